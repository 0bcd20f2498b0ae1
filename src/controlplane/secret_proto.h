// The issue-16 fields of a secret on the worker channel (SecretSpec and
// UpdateSecretRequest carry the same ones), filled in one place.
#pragma once

#include "controlplane/secrets.h"

namespace osb::controlplane {

template <typename Msg>
void FillSecretKindFields(const PlainSecret& s, Msg* m) {
  if (s.kind != "value") m->set_kind(s.kind);
  for (const auto& r : s.allowed_requests) {
    auto* out = m->add_allowed_requests();
    out->set_host(r.host);
    for (const auto& method : r.methods) out->add_methods(method);
    out->set_path_prefix(r.path_prefix);
  }
  if (s.on_disallowed_request != "seal") m->set_on_disallowed_request(s.on_disallowed_request);
}

}  // namespace osb::controlplane
