// Test helper: a fresh, isolated database for the backend under test.
// OSB_TEST_DB=sqlite (default) → a new SQLite file in a new temp dir;
// OSB_TEST_DB=postgres:FILE → a new database on the fixture server whose URL
// is in FILE (written by scripts/test-postgres.sh).
// No mocks: both are real servers/files.
#pragma once

#include <string>
#include <vector>

namespace osb::testing {

// "sqlite" or "postgres".
std::string TestBackend();

// A URL for a brand-new empty database (aborts the test binary on failure).
std::string FreshDatabaseUrl();

// Raw SQL on a database URL, bypassing the store (to inspect stored rows).
// Returns every row's columns as text (SQLite blobs as raw bytes; PostgreSQL
// as returned in text format).
std::vector<std::vector<std::string>> RawQuery(const std::string& url, const std::string& sql);

// Makes a unique temp directory and returns its path.
std::string MakeTempDir();

}  // namespace osb::testing
