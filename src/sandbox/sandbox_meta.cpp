#include "sandbox/sandbox_meta.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace osb::sandbox {

Status WriteMeta(const std::string& path, const SandboxMeta& m) {
  std::ostringstream o;
  o << "id=" << m.info.id << "\nsandboxAddress=" << m.info.sandboxAddress << "\nhostAddress=" << m.info.hostAddress
    << "\nnetns=" << m.info.netnsName << "\ninitPid=" << m.info.initPid << "\ninitStartTime=" << m.initStartTime
    << "\nidBase=" << m.info.hostIdBase << "\nstartedAt=" << m.info.startedAtUnix << "\nendsAt=" << m.info.endsAtUnix
    << "\nproxyExplicitPort=" << m.network.proxyExplicitPort << "\nproxyTlsPort=" << m.network.proxyTransparentTlsPort
    << "\nproxyHttpPort=" << m.network.proxyTransparentHttpPort << "\ndnsPort=" << m.network.dnsPort << "\n";
  for (const auto& a : m.dnsAllowlist) o << "allow=" << a << "\n";
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError(ErrorCode::kInternal, "cannot write " + tmp + ": " + std::strerror(errno));
  const std::string data = o.str();
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return MakeError(ErrorCode::kInternal, "cannot write " + path);
  }
  return {};
}

std::optional<SandboxMeta> ReadMeta(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  SandboxMeta m;
  auto num = [](const std::string& v) -> int64_t {
    try {
      return std::stoll(v);
    } catch (...) {
      return -1;
    }
  };
  auto port = [&](const std::string& v) { return static_cast<uint16_t>(std::max<int64_t>(0, std::min<int64_t>(65535, num(v)))); };
  for (std::string line; std::getline(f, line);) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "id") m.info.id = v;
    else if (k == "sandboxAddress") m.info.sandboxAddress = v;
    else if (k == "hostAddress") m.info.hostAddress = v;
    else if (k == "netns") m.info.netnsName = v;
    else if (k == "initPid") m.info.initPid = num(v);
    else if (k == "initStartTime") m.initStartTime = static_cast<uint64_t>(std::max<int64_t>(0, num(v)));
    else if (k == "startedAt") m.info.startedAtUnix = num(v);
    else if (k == "idBase") m.info.hostIdBase = static_cast<uint32_t>(std::max<int64_t>(0, std::min<int64_t>(UINT32_MAX, num(v))));
    else if (k == "endsAt") m.info.endsAtUnix = num(v);
    else if (k == "proxyExplicitPort") m.network.proxyExplicitPort = port(v);
    else if (k == "proxyTlsPort") m.network.proxyTransparentTlsPort = port(v);
    else if (k == "proxyHttpPort") m.network.proxyTransparentHttpPort = port(v);
    else if (k == "dnsPort") m.network.dnsPort = port(v);
    else if (k == "allow") m.dnsAllowlist.push_back(v);
  }
  if (m.info.id.empty() || m.info.initPid <= 0 || m.initStartTime == 0) return std::nullopt;
  return m;
}

uint64_t ProcessStartTime(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));  // fields 3.. after "comm) "
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) {
      try {
        return std::stoull(field);
      } catch (...) {
        return 0;
      }
    }
  return 0;
}

}  // namespace osb::sandbox
