// REST routes for files inside a sandbox (docs/files.md); see file_routes.cpp
// for the list. Upload and download are streaming routes
// (Router::AddStreaming): bounded memory for any size.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <map>
#include <optional>
#include <string>

#include "api/router.h"
#include "controlplane/sandbox_files.h"

namespace osb::api {

void RegisterFileRoutes(Router& router, controlplane::SandboxFiles& files);
// Query string -> map; '+' is a space and %XX is decoded (form encoding).
// nullopt for malformed escapes. (Also used by template_routes.cpp.)
std::optional<std::map<std::string, std::string>> ParseQuery(const std::string& query);
// {name, type, size, mode ("0644"), mtime (RFC 3339, ms)}
nlohmann::json FileEntryJson(const controlplane::FileEntryView& e);

}  // namespace osb::api
