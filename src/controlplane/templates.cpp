#include "controlplane/templates.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "images/image_manifest.h"
#include "images/image_store.h"

namespace osb::controlplane {
namespace {

Error HostError(const std::string& what) {
  return MakeError(ErrorCode::kInternal, what + ": " + std::strerror(errno));
}

Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return HostError("mkdir " + path);
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return HostError("not a directory: " + path);
  if ((st.st_mode & 077) != 0 && chmod(path.c_str(), 0700) != 0) return HostError("chmod " + path);
  return {};
}

TemplateView ViewOf(const store::TemplateRow& r) { return {r.name, r.digest, r.size_bytes, r.created_at}; }

// Sandboxes in these states hold (or will hold again) the image.
bool Holds(const std::string& status) {
  return status == "creating" || status == "running" || status == "hibernated" || status == "waking";
}

std::string TemplateIdOf(const std::string& config) {
  auto j = nlohmann::json::parse(config, nullptr, false);
  if (!j.is_object()) return "";
  auto it = j.find("templateID");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

TemplateService::TemplateService(store::Store& store, TemplateOptions options)
    : store_(store), options_(std::move(options)) {}

Status TemplateService::ValidateName(const std::string& name) {
  auto bad = [&] {
    return MakeError(ErrorCode::kInvalidArgument, "name: '" + images::Excerpt(name) +
                                                      "' is not a template name ([A-Za-z0-9][A-Za-z0-9._-]{0,127})");
  };
  if (name.empty()) return MakeError(ErrorCode::kInvalidArgument, "name: required");
  if (name.size() > 128 || !std::isalnum(static_cast<unsigned char>(name[0]))) return bad();
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return bad();
  if (name == "base") return MakeError(ErrorCode::kInvalidArgument, "name: 'base' is reserved (the host-dirs root)");
  return {};
}

std::string TemplateService::TarballPath(const std::string& digest) const {
  return options_.dir + "/sha256/" + digest.substr(7) + ".tar";
}

Status TemplateService::Admit(const std::string& org_id, const std::string& name,
                              std::optional<uint64_t> content_length) const {
  if (auto st = ValidateName(name); !st) return st;
  if (content_length && *content_length > options_.max_bytes)
    return MakeError(ErrorCode::kTooLarge, "template: " + std::to_string(*content_length) +
                                               " bytes is over the server's limit of " +
                                               std::to_string(options_.max_bytes) + " (--max-template-bytes)");
  auto existing = store_.GetTemplate(org_id, name);
  if (existing) return MakeError(ErrorCode::kAlreadyExists, "name: template " + name + " already exists");
  if (existing.error().code != ErrorCode::kNotFound) return existing.error();
  return {};
}

Result<TemplateView> TemplateService::Import(const std::string& org_id, const std::string& name,
                                             const TemplateChunks& next) {
  if (auto st = Admit(org_id, name, std::nullopt); !st) return st.error();
  for (const auto& d : {options_.dir, options_.dir + "/tmp", options_.dir + "/sha256"})
    if (auto st = MakeDir(d); !st) return st.error();
  std::string tmp = options_.dir + "/tmp/upload-XXXXXX";
  const int fd = mkstemp(tmp.data());
  if (fd < 0) return HostError("create a temp file in " + options_.dir + "/tmp");
  struct Temp {
    std::string path;
    int fd;
    ~Temp() {
      if (fd >= 0) close(fd);
      if (!path.empty()) unlink(path.c_str());
    }
  } temp{tmp, fd};

  uint64_t size = 0;
  for (;;) {
    auto chunk = next();
    if (!chunk) return chunk.error();
    if (!*chunk) break;
    const std::string& data = **chunk;
    size += data.size();
    if (size > options_.max_bytes)
      return MakeError(ErrorCode::kTooLarge, "template: over the server's limit of " +
                                                 std::to_string(options_.max_bytes) + " bytes (--max-template-bytes)");
    for (size_t off = 0; off < data.size();) {
      ssize_t w = write(fd, data.data() + off, data.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return HostError("write " + tmp);
      off += static_cast<size_t>(w);
    }
  }
  if (size == 0) return MakeError(ErrorCode::kInvalidArgument, "body: empty (send the image tarball)");
  if (fsync(fd) != 0) return HostError("fsync " + tmp);

  images::ImportLimits limits;
  limits.maxArchiveBytes = options_.max_bytes;
  auto verified = images::VerifyImageArchive(tmp, options_.dir + "/tmp", limits);
  if (!verified) {
    Error e = verified.error();
    if (e.code == ErrorCode::kInvalidArgument) e.message = "image: " + e.message;
    return e;
  }

  store::TemplateRow row{store::NewId("tpl"), org_id, name, verified->configDigest, static_cast<int64_t>(size),
                         store::NowRfc3339()};
  std::lock_guard lock(files_mu_);
  const std::string final = TarballPath(row.digest);
  struct stat st {};
  if (lstat(final.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    row.size_bytes = st.st_size;  // the same image imported before (maybe by another org): keep that copy
  } else if (rename(tmp.c_str(), final.c_str()) != 0) {
    return HostError("rename into " + final);
  } else {
    temp.path.clear();
  }
  if (auto ins = store_.InsertTemplate(row); !ins) {
    auto count = store_.CountTemplatesWithDigest(row.digest);
    if (count && *count == 0) unlink(final.c_str());
    if (ins.error().code == ErrorCode::kAlreadyExists)
      return MakeError(ErrorCode::kAlreadyExists, "name: template " + name + " already exists");
    return ins.error();
  }
  spdlog::info("template {} imported for org {}: {} ({} bytes, {} layers)", name, org_id, row.digest, row.size_bytes,
               verified->layers);
  return ViewOf(row);
}

Result<std::vector<TemplateView>> TemplateService::List(const std::string& org_id) {
  auto rows = store_.ListTemplates(org_id);
  if (!rows) return rows.error();
  std::vector<TemplateView> out;
  for (const auto& r : *rows) out.push_back(ViewOf(r));
  return out;
}

Result<TemplateView> TemplateService::Get(const std::string& org_id, const std::string& name) {
  if (auto st = ValidateName(name); !st) return st.error();
  auto row = store_.GetTemplate(org_id, name);
  if (!row) return row.error();
  return ViewOf(*row);
}

Status TemplateService::Delete(const std::string& org_id, const std::string& name) {
  if (auto st = ValidateName(name); !st) return st;
  if (auto known = store_.GetTemplate(org_id, name); !known) return known.error();
  // Sandboxes stored before migration 13 (or made before the org imported
  // this name) name it only in their config; they exist already, so this
  // check cannot race with their create.
  auto sandboxes = store_.ListSandboxes(org_id);
  if (!sandboxes) return sandboxes.error();
  for (const auto& s : *sandboxes)
    if (s.template_name.empty() && Holds(s.status) && TemplateIdOf(s.config) == name)
      return MakeError(ErrorCode::kConflict, "template " + name + " is in use by sandbox " + s.id +
                                                 " (delete its sandboxes first)");
  std::lock_guard lock(files_mu_);
  // The store checks the sandboxes that name it in the delete's transaction
  // (a create reserving at the same moment either blocks this or fails).
  auto row = store_.DeleteTemplate(org_id, name);
  if (!row) return row.error();
  auto count = store_.CountTemplatesWithDigest(row->digest);
  if (count && *count == 0 && unlink(TarballPath(row->digest).c_str()) != 0 && errno != ENOENT)
    spdlog::warn("template {}: cannot remove {}: {}", name, TarballPath(row->digest), std::strerror(errno));
  spdlog::info("template {} deleted for org {}", name, org_id);
  return {};
}

Result<std::optional<std::string>> TemplateService::DigestFor(const std::string& org_id, const std::string& name) {
  if (name.empty() || name == "base") return std::optional<std::string>();
  auto row = store_.GetTemplate(org_id, name);
  if (!row) {
    if (row.error().code == ErrorCode::kNotFound) return std::optional<std::string>();
    return row.error();
  }
  return std::optional<std::string>(row->digest);
}

Result<std::string> TemplateService::TarballForWorker(const std::string& worker_id, const std::string& digest) {
  if (auto st = images::ValidateDigest(digest, "digest"); !st) return st.error();
  auto known = store_.CountTemplatesWithDigest(digest);
  if (!known) return known.error();
  if (*known == 0) return MakeError(ErrorCode::kNotFound, "digest: no template has image " + digest);
  // Creating and waking sandboxes are the ones a worker may be building now.
  auto creating = store_.ListWorkerSandboxes(worker_id, "creating");
  if (!creating) return creating.error();
  auto waking = store_.ListWorkerSandboxes(worker_id, "waking");
  if (!waking) return waking.error();
  creating->insert(creating->end(), waking->begin(), waking->end());
  for (const auto& s : *creating) {
    const std::string name = TemplateIdOf(s.config);
    if (name.empty()) continue;
    auto row = store_.GetTemplate(s.org_id, name);
    if (row && row->digest == digest) {
      const std::string path = TarballPath(digest);
      if (access(path.c_str(), R_OK) != 0)
        return MakeError(ErrorCode::kNotFound, "digest: image " + digest + " is not stored on this control plane");
      return path;
    }
  }
  return MakeError(ErrorCode::kFailedPrecondition,
                   "digest: no sandbox being created on worker " + worker_id + " uses image " + digest);
}

}  // namespace osb::controlplane
