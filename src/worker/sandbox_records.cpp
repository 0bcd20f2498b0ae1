#include "worker/sandbox_records.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace osb::worker {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json ToJson(const SandboxRecord& r) {
  json secrets = json::array();
  for (const auto& s : r.secrets) {
    json one = {{"name", s.name}, {"token", s.token}, {"allowedHosts", s.allowed_hosts}};
    if (s.kind != "value") one["kind"] = s.kind;
    if (!s.aux_token.empty()) one["auxToken"] = s.aux_token;
    secrets.push_back(std::move(one));
  }
  return {{"id", r.id},
          {"projectId", r.project_id},
          {"templateId", r.template_id},
          {"cpuCount", r.cpu_count},
          {"memoryMB", r.memory_mb},
          {"timeoutSec", r.timeout_sec},
          {"egressAllowlist", r.egress_allowlist},
          {"secrets", secrets},
          {"sandboxAddress", r.sandbox_address},
          {"hostAddress", r.host_address},
          {"startedAt", r.started_at_unix},
          {"endsAt", r.ends_at_unix},
          {"templateDigest", r.template_digest},
          {"diskMB", r.disk_mb}};
}

SandboxRecord FromJson(const json& j) {
  SandboxRecord r;
  r.id = j.at("id").get<std::string>();
  r.project_id = j.value("projectId", "");
  r.template_id = j.value("templateId", "");
  r.cpu_count = j.value("cpuCount", 1);
  r.memory_mb = j.value("memoryMB", 512);
  r.timeout_sec = j.value("timeoutSec", 300);
  r.egress_allowlist = j.value("egressAllowlist", std::vector<std::string>{});
  for (const auto& s : j.value("secrets", json::array())) {
    r.secrets.push_back({s.at("name").get<std::string>(), s.at("token").get<std::string>(),
                         s.value("allowedHosts", std::vector<std::string>{}), s.value("kind", std::string("value")),
                         s.value("auxToken", std::string())});
  }
  r.sandbox_address = j.value("sandboxAddress", "");
  r.host_address = j.value("hostAddress", "");
  r.started_at_unix = j.value("startedAt", int64_t{0});
  r.ends_at_unix = j.value("endsAt", int64_t{0});
  r.template_digest = j.value("templateDigest", "");
  r.disk_mb = j.value("diskMB", 0);
  return r;
}

}  // namespace

SandboxRecords::SandboxRecords(std::string state_dir) : dir_(std::move(state_dir) + "/sandboxes") {}

Status SandboxRecords::Save(const SandboxRecord& record) const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  fs::permissions(dir_, fs::perms::owner_all, ec);
  const std::string path = dir_ + "/" + record.id + ".json";
  const std::string tmp = path + ".tmp";
  const std::string body = ToJson(record).dump(2);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError(ErrorCode::kInternal, "cannot write " + tmp);
  const bool written = ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  if (!written || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return MakeError(ErrorCode::kInternal, "cannot write " + path);
  }
  return {};
}

Status SandboxRecords::Remove(const std::string& id) const {
  std::error_code ec;
  fs::remove(dir_ + "/" + id + ".json", ec);
  if (ec) return MakeError(ErrorCode::kInternal, "cannot remove record of " + id);
  return {};
}

std::vector<SandboxRecord> SandboxRecords::LoadAll(std::vector<std::string>* problems) const {
  std::vector<SandboxRecord> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    try {
      out.push_back(FromJson(json::parse(ss.str())));
    } catch (const std::exception&) {
      if (problems) problems->push_back(entry.path().string() + ": unreadable record");
    }
  }
  return out;
}

}  // namespace osb::worker
