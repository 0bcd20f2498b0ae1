// Host-side nftables rules of one sandbox, in their own table
// `table inet <prefix>_<id>` so install and removal are each one atomic
// `nft -f` transaction. Everything matches on the sandbox's host veth, so
// tables of different sandboxes never interact.
//
// From the sandbox (iif = its veth) the host accepts only, each DNATed to
// the worker's listener on 127.0.0.1 (the veth has route_localnet=1):
//   - TCP to <hostAddr>:<proxyExplicitPort>   -> 127.0.0.1:proxyExplicitPort
//   - TCP dport 443 to any address            -> 127.0.0.1:proxyTransparentTlsPort
//   - TCP dport 80  to any address            -> 127.0.0.1:proxyTransparentHttpPort
//   - UDP/TCP dport 53 to any address         -> 127.0.0.1:dnsPort
// Everything else is dropped: other ports, UDP, ICMP, IPv6, forwarding (so
// also traffic to other sandboxes), and any packet whose source is not the
// sandbox's own address (anti-spoofing, before NAT). The listeners see the
// sandbox's address as peer, and SO_ORIGINAL_DST gives the original target.
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
