// Host-side nftables rules of one sandbox, in their own table
// `table inet <prefix>_<id>` so install and removal are each one atomic
// `nft -f` transaction. Everything matches on the sandbox's host veth, so
// tables of different sandboxes never interact.
//
// From the sandbox (iif = its veth) the host accepts only:
//   - TCP to <hostAddr>:<proxyExplicitPort>
//   - TCP dport 443 to any address -> redirected to :proxyTransparentTlsPort
//   - TCP dport 80  to any address -> redirected to :proxyTransparentHttpPort
//   - UDP/TCP dport 53 to any address -> redirected to :dnsPort
// Everything else is dropped: other ports, UDP, ICMP, IPv6, forwarding (so
// also traffic to other sandboxes), and any packet whose source is not the
// sandbox's own address (anti-spoofing, before NAT). Redirects keep the
// original destination in conntrack (SO_ORIGINAL_DST works for the proxy).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "sandbox/network.h"
#include "sandbox/spec.h"

namespace osb::sandbox {

// The ruleset text (pure; unit-tested).
std::string BuildRuleset(const NetworkNames& names, const AddressLease& lease, const NetworkSpec& net);

// Installs the table (replacing a leftover of the same name atomically).
Status InstallRules(const NetworkNames& names, const AddressLease& lease, const NetworkSpec& net);
// Deletes the table; a missing table is not an error.
Status RemoveRules(const std::string& table);
// Names of `inet` tables starting with "<prefix>_" (for ReconcileLeftovers).
Result<std::vector<std::string>> ListTables(const std::string& prefix);

}  // namespace osb::sandbox
