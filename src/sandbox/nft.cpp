#include "sandbox/nft.h"

#include <sstream>

#include "sandbox/host_command.h"

namespace osb::sandbox {
namespace {
constexpr const char* kLoopback = "127.0.0.1";
}  // namespace

std::string BuildRuleset(const NetworkNames& names, const AddressLease& lease, const NetworkSpec& net) {
  const std::string t = names.nftTable;
  const std::string iif = "iifname \"" + names.hostVeth + "\"";
  const std::string sb = lease.sandboxAddress;
  const std::string host = lease.hostAddress;
  auto port = [](uint16_t p) { return std::to_string(p); };
  std::ostringstream r;
  // "add table" + "delete table" makes the install idempotent and atomic.
  r << "add table inet " << t << "\n"
    << "delete table inet " << t << "\n"
    << "table inet " << t << " {\n"
    // Before conntrack/NAT: only IPv4 from the sandbox's own address.
    << "  chain guard {\n"
    << "    type filter hook prerouting priority raw; policy accept;\n"
    << "    " << iif << " meta nfproto ipv6 drop\n"
    << "    " << iif << " ip saddr != " << sb << " drop\n"
    << "  }\n"
    // Every allowed flow is DNATed to the worker's listener on 127.0.0.1,
    // so those listeners never need to bind a routable address.
    << "  chain to_local {\n"
    << "    type nat hook prerouting priority dstnat; policy accept;\n"
    << "    " << iif << " ip saddr " << sb << " tcp dport 443 dnat ip to " << kLoopback << ":" << port(net.proxyTransparentTlsPort) << "\n"
    << "    " << iif << " ip saddr " << sb << " tcp dport 80 dnat ip to " << kLoopback << ":" << port(net.proxyTransparentHttpPort) << "\n"
    << "    " << iif << " ip saddr " << sb << " udp dport 53 dnat ip to " << kLoopback << ":" << port(net.dnsPort) << "\n"
    << "    " << iif << " ip saddr " << sb << " tcp dport 53 dnat ip to " << kLoopback << ":" << port(net.dnsPort) << "\n"
    << "    " << iif << " ip saddr " << sb << " ip daddr " << host << " tcp dport " << port(net.proxyExplicitPort)
    << " dnat ip to " << kLoopback << ":" << port(net.proxyExplicitPort) << "\n"
    << "  }\n"
    // After NAT every allowed packet is addressed to a loopback listener.
    << "  chain accept_local {\n"
    << "    type filter hook input priority filter; policy accept;\n"
    << "    " << iif << " ip saddr " << sb << " ip daddr " << kLoopback << " tcp dport { " << port(net.proxyExplicitPort)
    << ", " << port(net.proxyTransparentTlsPort) << ", " << port(net.proxyTransparentHttpPort) << ", "
    << port(net.dnsPort) << " } accept\n"
    << "    " << iif << " ip saddr " << sb << " ip daddr " << kLoopback << " udp dport " << port(net.dnsPort) << " accept\n"
    << "    " << iif << " drop\n"
    << "  }\n"
    << "  chain no_forward {\n"
    << "    type filter hook forward priority filter; policy accept;\n"
    << "    " << iif << " drop\n"
    << "    oifname \"" << names.hostVeth << "\" drop\n"
    << "  }\n"
    << "}\n";
  return r.str();
}

Status InstallRules(const NetworkNames& names, const AddressLease& lease, const NetworkSpec& net) {
  return RunHostCommandOk({"nft", "-f", "-"}, BuildRuleset(names, lease, net));
}

Status RemoveRules(const std::string& table) {
  // "add" first so deleting a missing table is not an error; one transaction.
  return RunHostCommandOk({"nft", "-f", "-"}, "add table inet " + table + "\ndelete table inet " + table + "\n");
}

Result<std::vector<std::string>> ListTables(const std::string& prefix) {
  auto out = RunHostCommand({"nft", "list", "tables"});
  if (!out) return out.error();
  if (out->exitCode != 0) return MakeError(ErrorCode::kInternal, "nft list tables failed");
  std::vector<std::string> tables;
  std::istringstream lines(out->out);
  std::string kw, family, name;
  while (lines >> kw >> family >> name)
    if (kw == "table" && family == "inet" && name.rfind(prefix + "_", 0) == 0) tables.push_back(name);
  return tables;
}

}  // namespace osb::sandbox
