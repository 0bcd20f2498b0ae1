#include "controlplane/projects.h"

#include <algorithm>

#include "controlplane/validation.h"

namespace osb::controlplane {
namespace {

Error NameTaken(const std::string& what, const std::string& name) {
  return MakeError(ErrorCode::kAlreadyExists, "name: a " + what + " named '" + name + "' already exists");
}

}  // namespace

Result<store::Project> ProjectService::Find(const std::string& org_id, const std::string& ref) {
  if (Status st = ValidateReference("project", ref); !st) return st.error();
  auto p = store_.GetProject(org_id, ref);
  if (!p && p.error().code == ErrorCode::kNotFound) {
    return MakeError(ErrorCode::kNotFound, "project '" + ref + "' not found");
  }
  return p;
}

// Validates `f` and normalises it in place: allowlist entries normalised,
// secretGroups references replaced by group ids. Reads the store, so it runs
// before (outside) the update transaction.
Status ProjectService::Normalize(const std::string& org_id, ProjectFields& f) {
  if (f.name) {
    if (Status st = ValidateName("name", *f.name); !st) return st;
  }
  if (f.template_id) {
    if (Status st = ValidateName("template", *f.template_id); !st) return st;
  }
  if (f.cpu_count) {
    if (Status st = ValidateRange("cpuCount", *f.cpu_count, kMinCpu, kMaxCpu); !st) return st;
  }
  if (f.memory_mb) {
    if (Status st = ValidateRange("memoryMB", *f.memory_mb, kMinMemoryMb, kMaxMemoryMb); !st) return st;
  }
  if (f.disk_mb) {
    if (Status st = ValidateRange("diskMB", *f.disk_mb, kMinDiskMb, kMaxDiskMb); !st) return st;
  }
  if (f.timeout_sec) {
    if (Status st = ValidateRange("timeoutSec", *f.timeout_sec, kMinTimeoutSec, kMaxSandboxTimeoutSec); !st) {
      return st;
    }
  }
  if (f.egress_allowlist) {
    auto list = NormalizeHostPatterns("egressAllowlist", *f.egress_allowlist);
    if (!list) return list.error();
    f.egress_allowlist = std::move(*list);
  }
  if (f.secret_groups) {
    std::vector<std::string> ids;
    for (const auto& ref : *f.secret_groups) {
      if (!ValidateReference("secret group", ref).ok()) {
        return MakeError(ErrorCode::kInvalidArgument, "secretGroups: invalid entry '" + ref.substr(0, 80) + "'");
      }
      auto g = store_.GetGroup(org_id, ref);
      if (!g) {
        if (g.error().code == ErrorCode::kNotFound) {
          return MakeError(ErrorCode::kInvalidArgument, "secretGroups: no secret group named '" + ref + "'");
        }
        return g.error();
      }
      for (const auto& id : ids) {
        if (id == g->id) {
          return MakeError(ErrorCode::kInvalidArgument, "secretGroups: '" + ref + "' is listed twice");
        }
      }
      ids.push_back(g->id);
    }
    f.secret_groups = std::move(ids);
  }
  return {};
}

// Copies the fields present in a normalised `f` onto `p` (pure).
void ProjectService::Merge(const ProjectFields& f, store::Project& p) {
  if (f.name) p.name = *f.name;
  if (f.template_id) p.template_id = *f.template_id;
  if (f.cpu_count) p.cpu_count = *f.cpu_count;
  if (f.memory_mb) p.memory_mb = *f.memory_mb;
  if (f.disk_mb) p.disk_mb = *f.disk_mb;
  if (f.timeout_sec) p.timeout_sec = *f.timeout_sec;
  if (f.egress_allowlist) p.egress_allowlist = *f.egress_allowlist;
  if (f.secret_groups) p.secret_group_ids = *f.secret_groups;
}

Result<ProjectView> ProjectService::View(store::Project p) {
  ProjectView v;
  for (const auto& id : p.secret_group_ids) {
    auto g = store_.GetGroupById(id);
    if (!g) return g.error();
    v.secret_group_names.push_back(g->name);
  }
  v.project = std::move(p);
  return v;
}

Result<ProjectView> ProjectService::Create(const std::string& org_id, const ProjectFields& fields) {
  if (!fields.name) return MakeError(ErrorCode::kInvalidArgument, "name: is required");
  store::Project p;
  p.id = store::NewId("prj");
  p.org_id = org_id;
  p.template_id = kDefaultTemplate;
  p.cpu_count = kDefaultCpu;
  p.memory_mb = kDefaultMemoryMb;
  p.disk_mb = kDefaultDiskMb;
  p.timeout_sec = kDefaultTimeoutSec;
  ProjectFields normalized = fields;
  if (Status st = Normalize(org_id, normalized); !st) return st.error();
  Merge(normalized, p);
  p.created_at = p.updated_at = store::NowRfc3339();
  auto created = store_.CreateProject(std::move(p));
  if (!created) {
    if (created.error().code == ErrorCode::kAlreadyExists) return NameTaken("project", *fields.name);
    return created.error();
  }
  return View(std::move(*created));
}

Result<ProjectView> ProjectService::Get(const std::string& org_id, const std::string& ref) {
  auto p = Find(org_id, ref);
  if (!p) return p.error();
  return View(std::move(*p));
}

Result<std::vector<ProjectView>> ProjectService::List(const std::string& org_id) {
  auto rows = store_.ListProjects(org_id);
  if (!rows) return rows.error();
  std::vector<ProjectView> out;
  for (auto& p : *rows) {
    auto v = View(std::move(p));
    if (!v) return v.error();
    out.push_back(std::move(*v));
  }
  return out;
}

Result<ProjectView> ProjectService::Update(const std::string& org_id, const std::string& ref,
                                           const ProjectFields& patch) {
  auto p = Find(org_id, ref);
  if (!p) return p.error();
  ProjectFields normalized = patch;
  if (Status st = Normalize(org_id, normalized); !st) return st.error();
  auto updated = store_.UpdateProject(org_id, p->id, [&](store::Project& row) -> Status {
    Merge(normalized, row);
    row.updated_at = store::NowRfc3339();
    return {};
  });
  if (!updated) {
    if (updated.error().code == ErrorCode::kAlreadyExists) {
      return NameTaken("project", normalized.name.value_or(p->name));
    }
    if (updated.error().code == ErrorCode::kNotFound) {
      return MakeError(ErrorCode::kNotFound, "project '" + ref + "' not found");
    }
    return updated.error();
  }
  if (groups_changed_ && updated->secret_group_ids != p->secret_group_ids) {
    std::vector<std::string> involved = p->secret_group_ids;
    for (const auto& g : updated->secret_group_ids) {
      if (std::find(involved.begin(), involved.end(), g) == involved.end()) involved.push_back(g);
    }
    groups_changed_(org_id, updated->id, involved);
  }
  return View(std::move(*updated));
}

Status ProjectService::Delete(const std::string& org_id, const std::string& ref) {
  auto p = Find(org_id, ref);
  if (!p) return p.error();
  if (before_delete_) before_delete_(org_id, p->id);
  return store_.DeleteProject(org_id, p->id);
}

Result<store::SecretGroup> GroupService::Create(const std::string& org_id, const std::string& name) {
  if (Status st = ValidateName("name", name); !st) return st.error();
  const auto now = store::NowRfc3339();
  auto g = store_.CreateGroup({store::NewId("grp"), org_id, name, std::nullopt, now, now});
  if (!g && g.error().code == ErrorCode::kAlreadyExists) return NameTaken("secret group", name);
  return g;
}

Result<store::SecretGroup> GroupService::Get(const std::string& org_id, const std::string& ref) {
  if (Status st = ValidateReference("secret group", ref); !st) return st.error();
  auto g = store_.GetGroup(org_id, ref);
  if (!g && g.error().code == ErrorCode::kNotFound) {
    return MakeError(ErrorCode::kNotFound, "secret group '" + ref + "' not found");
  }
  return g;
}

Result<std::vector<store::SecretGroup>> GroupService::List(const std::string& org_id) {
  return store_.ListGroups(org_id);
}

Result<store::SecretGroup> GroupService::Rename(const std::string& org_id, const std::string& ref,
                                                const std::string& new_name) {
  if (Status st = ValidateName("name", new_name); !st) return st.error();
  auto g = Get(org_id, ref);
  if (!g) return g.error();
  auto renamed = store_.RenameGroup(org_id, g->id, new_name, store::NowRfc3339());
  if (!renamed && renamed.error().code == ErrorCode::kAlreadyExists) return NameTaken("secret group", new_name);
  return renamed;
}

Status GroupService::Delete(const std::string& org_id, const std::string& ref) {
  auto g = Get(org_id, ref);
  if (!g) return g.error();
  auto st = store_.DeleteGroup(org_id, g->id);
  if (!st && st.error().code == ErrorCode::kFailedPrecondition) {
    // 409: the name/state conflicts with another object the caller owns.
    return MakeError(ErrorCode::kAlreadyExists,
                     st.error().message + "; detach it first (PATCH the project's secretGroups)");
  }
  return st;
}

}  // namespace osb::controlplane
