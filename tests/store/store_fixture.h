// Test fixture: a Store on a brand-new database of the backend under test
// (OSB_TEST_DB, see test_db.h), every migration applied. Suites derive
// from it and call StoreFixture::SetUp() first in their own SetUp.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "store/store.h"
#include "test_db.h"

namespace osb::testing {

class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = FreshDatabaseUrl();
    auto opened = store::OpenStore(url_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    store_ = std::move(*opened);
  }
  std::string url_;  // for RawQuery and second connections
  std::unique_ptr<store::Store> store_;
};

}  // namespace osb::testing
