// Test harness: a real control plane (real HTTP server, real database of the
// backend under test) started in-process on an ephemeral port, a small
// blocking HTTP client, and capture of every log line the server writes.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/control_plane.h"
#include "api/sandbox_plane.h"
#include "crypto/keyring.h"
#include "test_db.h"

namespace osb::testing {

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// One request per connection unless a Connection object is reused.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port) : port_(port) {}
  HttpResult Do(const std::string& method, const std::string& target, const std::string& body = "",
                const std::map<std::string, std::string>& headers = {});
  // Raw bytes in, raw response bytes out (for malformed-request tests).
  std::string Raw(const std::string& bytes);

 private:
  uint16_t port_;
};

inline constexpr const char* kTestPrimaryKey = "0101010101010101010101010101010101010101010101010101010101010101";
inline constexpr const char* kTestAdminKey = "osb_test_admin_key_0123456789abcdef0123456789abcdef";

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Requests with the admin key; every response body is remembered so tests
  // can assert no secret value ever came back.
  HttpResult Call(const std::string& method, const std::string& target, const char* body = "",
                  const std::string& api_key = kTestAdminKey) {
    return Call(method, target, std::string(body), api_key);
  }
  HttpResult Call(const std::string& method, const std::string& target, const std::string& body,
                  const std::string& api_key = kTestAdminKey);
  HttpResult Call(const std::string& method, const std::string& target, const nlohmann::json& body,
                  const std::string& api_key = kTestAdminKey);

  // How the sandbox plane is attached (a fixture may plug in fake workers).
  // (Image templates in a fresh temp dir, so every route is registered.)
  virtual api::SandboxPlaneOptions PlaneOptions() {
    api::SandboxPlaneOptions o{"127.0.0.1:0", std::nullopt};
    o.templates.dir = MakeTempDir() + "/templates";
    return o;
  }

  // A second org with its own key (via the store: orgs have no REST route).
  std::string AddOrg(const std::string& name);

  // Everything the server logged so far.
  std::string Logs() const;
  // Fails the test if `value` occurs in any response or log line.
  void ExpectNeverExposed(const std::string& value);

  std::string db_url_;
  std::shared_ptr<const crypto::Keyring> keyring_;
  std::unique_ptr<api::ControlPlane> cp_;
  // The sandbox routes, with no worker registered (creating answers 503).
  std::unique_ptr<api::SandboxPlane> sandboxes_;
  std::unique_ptr<HttpClient> client_;
  std::vector<std::string> responses_;
  std::mutex responses_mu_;
};

}  // namespace osb::testing
