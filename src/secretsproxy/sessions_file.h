// Loads `osb proxy --sessions FILE`: a JSON list of
//   {"source": "127.0.0.2", "sandboxId": "sb1", "allowlist": ["*.example.com"],
//    "secrets": [{"name": "API_KEY", "token": "osb_sealed_<32 hex>",
//                 "value": "...", "allowedHosts": ["api.example.com"]}]}
// Errors name the field (e.g. "sessions[1].secrets[0].token") and never
// echo values. The caller owns the returned values (wipe after Register).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "secretsproxy/session_registry.h"

namespace osb::secretsproxy {

struct SessionEntry {
  std::string source;
  Session session;
};

Result<std::vector<SessionEntry>> ParseSessionsJson(const std::string& text);
Result<std::vector<SessionEntry>> LoadSessionsFile(const std::string& path);

}  // namespace osb::secretsproxy
