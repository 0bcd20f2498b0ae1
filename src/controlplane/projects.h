// Projects and org-level secret groups: validation, defaults, partial-merge
// updates. Thin over the store; the REST handlers translate JSON to these
// calls. Errors: kInvalidArgument naming the field, kNotFound (including
// another org's objects: orgs never see each other), kAlreadyExists (name
// taken), kFailedPrecondition (group still attached to a project).
// Thread safety: safe to share; every call is independent.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/store.h"

namespace osb::controlplane {

inline constexpr const char* kDefaultTemplate = "base";
inline constexpr int kDefaultCpu = 1;
inline constexpr int kDefaultMemoryMb = 512;
inline constexpr int kDefaultDiskMb = 1024;
inline constexpr int kDefaultTimeoutSec = 300;

// A create request or a partial update: absent fields get defaults (create)
// or keep their stored values (update). An explicit empty list clears.
struct ProjectFields {
  std::optional<std::string> name;
  std::optional<std::string> template_id;
  std::optional<int> cpu_count;
  std::optional<int> memory_mb;
  std::optional<int> disk_mb;
  std::optional<int> timeout_sec;
  std::optional<std::vector<std::string>> egress_allowlist;
  std::optional<std::vector<std::string>> secret_groups;  // group names (or ids), in order
};

struct ProjectView {
  store::Project project;
  std::vector<std::string> secret_group_names;  // parallel to project.secret_group_ids
};

class ProjectService {
 public:
  explicit ProjectService(store::Store& store) : store_(store) {}

  Result<ProjectView> Create(const std::string& org_id, const ProjectFields& fields);
  Result<ProjectView> Get(const std::string& org_id, const std::string& ref);
  Result<std::vector<ProjectView>> List(const std::string& org_id);
  Result<ProjectView> Update(const std::string& org_id, const std::string& ref, const ProjectFields& patch);
  Status Delete(const std::string& org_id, const std::string& ref);

  // Raw row lookup with reference validation (used by secrets/resolution).
  Result<store::Project> Find(const std::string& org_id, const std::string& ref);

  // Runs just before a project is deleted, with its id: its running
  // sandboxes are ended there, so none outlives the secrets it uses. Set it
  // before the service is shared.
  using BeforeDelete = std::function<void(const std::string& org_id, const std::string& project_id)>;
  void SetBeforeDelete(BeforeDelete hook) { before_delete_ = std::move(hook); }

  // Runs after an update that changed a project's attached groups (added,
  // removed or reordered) has been committed, with every group id that was
  // attached before or after: the secrets of those groups may now resolve
  // differently for the project's running sandboxes. Set it before the
  // service is shared.
  using GroupsChanged = std::function<void(const std::string& org_id, const std::string& project_id,
                                           const std::vector<std::string>& group_ids)>;
  void SetGroupsChanged(GroupsChanged hook) { groups_changed_ = std::move(hook); }

 private:
  Status Normalize(const std::string& org_id, ProjectFields& fields);
  static void Merge(const ProjectFields& fields, store::Project& p);
  Result<ProjectView> View(store::Project p);
  store::Store& store_;
  BeforeDelete before_delete_;
  GroupsChanged groups_changed_;
};

class GroupService {
 public:
  explicit GroupService(store::Store& store) : store_(store) {}

  Result<store::SecretGroup> Create(const std::string& org_id, const std::string& name);
  Result<store::SecretGroup> Get(const std::string& org_id, const std::string& ref);
  Result<std::vector<store::SecretGroup>> List(const std::string& org_id);
  Result<store::SecretGroup> Rename(const std::string& org_id, const std::string& ref,
                                    const std::string& new_name);
  Status Delete(const std::string& org_id, const std::string& ref);

 private:
  store::Store& store_;
};

}  // namespace osb::controlplane
