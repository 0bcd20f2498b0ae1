#include "images/image_store.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <memory>

#include "common/hex.h"
#include "images/layer_applier.h"

namespace osb::images {
namespace {

Error HostError(const std::string& what) { return MakeError(ErrorCode::kInternal, what + ": " + std::strerror(errno)); }

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

// Where the import's documents and blobs come from: a staged tarball or an
// OCI layout directory. Names are cleaned archive paths.
class Source {
 public:
  virtual ~Source() = default;
  // An fd open for reading, or kInvalidArgument naming what is missing.
  virtual Result<int> Open(const std::string& name) const = 0;
  virtual bool Has(const std::string& name) const = 0;
};

class DirSource : public Source {
 public:
  explicit DirSource(int dirFd) : dirFd_(dirFd) {}
  ~DirSource() override { close(dirFd_); }
  Result<int> Open(const std::string& name) const override {
    // Beneath the layout, never through a symlink.
    open_how how{};
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, dirFd_, name.c_str(), &how, sizeof how);
    if (fd < 0) return MakeError(ErrorCode::kInvalidArgument, Excerpt(name) + ": missing from the image layout");
    struct stat st {};
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISREG(st.st_mode)) {
      close(static_cast<int>(fd));
      return MakeError(ErrorCode::kInvalidArgument, Excerpt(name) + ": not a regular file");
    }
    return static_cast<int>(fd);
  }
  bool Has(const std::string& name) const override {
    auto r = Open(name);
    if (!r) return false;
    close(*r);
    return true;
  }

 private:
  int dirFd_;
};

class ArchiveSource : public Source {
 public:
  // Copies every regular file of the tarball into `scratch`/blobs (bounded
  // by maxBytes), remembering links as aliases.
  static Result<std::unique_ptr<ArchiveSource>> Stage(const std::string& path, const std::string& scratch,
                                                      uint64_t maxBytes) {
    auto src = std::unique_ptr<ArchiveSource>(new ArchiveSource);
    const std::string blobs = scratch + "/blobs";
    if (mkdir(blobs.c_str(), 0700) != 0) return HostError("mkdir " + blobs);
    std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), archive_read_free);
    archive_read_support_filter_none(a.get());
    archive_read_support_filter_gzip(a.get());
    archive_read_support_filter_zstd(a.get());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_gnutar(a.get());
    if (archive_read_open_filename(a.get(), path.c_str(), 1 << 16) != ARCHIVE_OK)
      return MakeError(ErrorCode::kInvalidArgument, "tarball: not a tar archive (tar, tar.gz or tar.zst)");
    uint64_t total = 0;
    size_t n = 0;
    std::vector<char> buf(1 << 16);
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return MakeError(ErrorCode::kInvalidArgument, "tarball: truncated or corrupt");
      if (++n > 100000) return MakeError(ErrorCode::kTooLarge, "tarball: too many entries");
      const char* raw = archive_entry_pathname(e);
      auto name = raw ? CleanArchivePath(raw) : std::nullopt;
      if (!name) return MakeError(ErrorCode::kInvalidArgument, "tarball: entry '" + Excerpt(raw ? raw : "?") +
                                                                   "': absolute path or '..'");
      if (const char* hl = archive_entry_hardlink(e)) {
        if (auto t = CleanArchivePath(hl)) src->aliases_[*name] = *t;
        continue;
      }
      const mode_t type = archive_entry_filetype(e);
      if (type == AE_IFLNK) {
        // docker save links repeated layers: "<id>/layer.tar -> ../<id2>/layer.tar".
        const char* target = archive_entry_symlink(e);
        std::string dir = name->find('/') == std::string::npos ? "" : name->substr(0, name->rfind('/') + 1);
        if (target && *target != '/')
          if (auto t = CleanArchivePath(dir + target)) src->aliases_[*name] = *t;
        continue;
      }
      if (type != AE_IFREG) continue;
      if (archive_entry_size_is_set(e) && static_cast<uint64_t>(archive_entry_size(e)) > maxBytes - total)
        return MakeError(ErrorCode::kTooLarge, "tarball: over the import size limit");
      const std::string staged = blobs + "/" + std::to_string(n);
      int fd = open(staged.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) return HostError("create " + staged);
      FdCloser closer{fd};
      for (;;) {
        la_ssize_t got = archive_read_data(a.get(), buf.data(), buf.size());
        if (got == 0) break;
        if (got < 0)
          return MakeError(ErrorCode::kInvalidArgument, "tarball: entry '" + Excerpt(*name) + "' truncated or corrupt");
        total += static_cast<uint64_t>(got);
        if (total > maxBytes) return MakeError(ErrorCode::kTooLarge, "tarball: over the import size limit");
        for (la_ssize_t off = 0; off < got;) {
          ssize_t w = write(fd, buf.data() + off, static_cast<size_t>(got - off));
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) return HostError("write " + staged);
          off += w;
        }
      }
      src->files_[*name] = staged;
    }
    return src;
  }

  Result<int> Open(const std::string& name) const override {
    auto path = Resolve(name);
    if (!path) return MakeError(ErrorCode::kInvalidArgument, Excerpt(name) + ": missing from the tarball");
    int fd = open(path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return HostError("open staged " + Excerpt(name));
    return fd;
  }
  bool Has(const std::string& name) const override { return Resolve(name).has_value(); }

 private:
  std::optional<std::string> Resolve(std::string name) const {
    for (int hop = 0; hop < 8; ++hop) {
      if (auto f = files_.find(name); f != files_.end()) return f->second;
      auto a = aliases_.find(name);
      if (a == aliases_.end()) return std::nullopt;
      name = a->second;
    }
    return std::nullopt;
  }
  std::map<std::string, std::string> files_;
  std::map<std::string, std::string> aliases_;
};

struct Digested {
  uint64_t size = 0;
  std::string digest;
};

Result<Digested> DigestFd(int fd, const std::string& what) {
  if (lseek(fd, 0, SEEK_SET) != 0) return HostError("seek " + what);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  Digested out;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return HostError("read " + what);
    if (n == 0) break;
    out.size += static_cast<uint64_t>(n);
    EVP_DigestUpdate(md.get(), buf.data(), static_cast<size_t>(n));
  }
  unsigned char h[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md.get(), h, &len);
  out.digest = "sha256:" + HexEncode(std::span<const uint8_t>(h, len));
  if (lseek(fd, 0, SEEK_SET) != 0) return HostError("seek " + what);
  return out;
}

Result<std::string> ReadAll(int fd, const std::string& what) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return HostError("read " + what);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxJsonBytes) return MakeError(ErrorCode::kInvalidArgument, what + ": larger than 4 MiB");
  }
  return out;
}

std::string BlobPath(const std::string& digest) { return "blobs/sha256/" + digest.substr(7); }

// Opens a blob and checks it against its descriptor: the error names the
// blob and both digests.
Result<int> OpenVerified(const Source& src, const Descriptor& d, const std::string& what) {
  auto fd = src.Open(BlobPath(d.digest));
  if (!fd) return MakeError(ErrorCode::kInvalidArgument, what + ": blob " + d.digest + " missing");
  auto got = DigestFd(*fd, what);
  if (!got) {
    close(*fd);
    return got.error();
  }
  if (got->digest != d.digest || got->size != d.size) {
    close(*fd);
    return MakeError(ErrorCode::kInvalidArgument, what + ": digest mismatch: expected " + d.digest + " (" +
                                                      std::to_string(d.size) + " bytes), content is " + got->digest +
                                                      " (" + std::to_string(got->size) + " bytes)");
  }
  return *fd;
}

Result<std::string> ReadVerified(const Source& src, const Descriptor& d, const std::string& what) {
  if (d.size > kMaxJsonBytes) return MakeError(ErrorCode::kInvalidArgument, what + ": larger than 4 MiB");
  auto fd = OpenVerified(src, d, what);
  if (!fd) return fd.error();
  FdCloser c{*fd};
  return ReadAll(*fd, what);
}

struct Plan {
  std::string configText;
  std::string configDigest;
  ImageConfig config;
  // Layer blobs, opened lazily: (name for messages, source name or descriptor).
  std::vector<std::pair<std::string, Descriptor>> ociLayers;
  std::vector<std::string> dockerLayers;
};

Result<Plan> PlanOci(const Source& src) {
  auto indexFd = src.Open("index.json");
  if (!indexFd) return indexFd.error();
  FdCloser ic{*indexFd};
  auto indexText = ReadAll(*indexFd, "index.json");
  if (!indexText) return indexText.error();
  auto desc = ParseOciIndex(*indexText, "index.json");
  if (!desc) return desc.error();
  if (IsIndexMediaType(desc->mediaType)) {  // an index of images (one level)
    auto nested = ReadVerified(src, *desc, "image index " + desc->digest);
    if (!nested) return nested.error();
    desc = ParseOciIndex(*nested, "image index " + desc->digest);
    if (!desc) return desc.error();
    if (IsIndexMediaType(desc->mediaType))
      return MakeError(ErrorCode::kInvalidArgument, "index.json: image indexes nested more than once");
  }
  auto manifestText = ReadVerified(src, *desc, "manifest " + desc->digest);
  if (!manifestText) return manifestText.error();
  auto manifest = ParseOciManifest(*manifestText, "manifest " + desc->digest);
  if (!manifest) return manifest.error();
  Plan plan;
  auto cfg = ReadVerified(src, manifest->config, "config " + manifest->config.digest);
  if (!cfg) return cfg.error();
  plan.configText = std::move(*cfg);
  plan.configDigest = manifest->config.digest;
  for (size_t i = 0; i < manifest->layers.size(); ++i)
    plan.ociLayers.emplace_back("layer " + std::to_string(i) + " (" + manifest->layers[i].digest + ")",
                                manifest->layers[i]);
  return plan;
}

Result<Plan> PlanDocker(const Source& src) {
  auto fd = src.Open("manifest.json");
  if (!fd) return fd.error();
  FdCloser mc{*fd};
  auto text = ReadAll(*fd, "manifest.json");
  if (!text) return text.error();
  auto manifest = ParseDockerManifest(*text);
  if (!manifest) return manifest.error();
  auto clean = CleanArchivePath(manifest->configPath);
  if (!clean) return MakeError(ErrorCode::kInvalidArgument, "manifest.json: [0].Config: invalid path");
  auto cfd = src.Open(*clean);
  if (!cfd) return cfd.error();
  FdCloser cc{*cfd};
  auto got = DigestFd(*cfd, "config");
  if (!got) return got.error();
  if (got->digest != manifest->configDigest)
    return MakeError(ErrorCode::kInvalidArgument, "config " + Excerpt(manifest->configPath) +
                                                      ": digest mismatch: its name says " + manifest->configDigest +
                                                      ", content is " + got->digest);
  auto cfg = ReadAll(*cfd, "config");
  if (!cfg) return cfg.error();
  Plan plan;
  plan.configText = std::move(*cfg);
  plan.configDigest = manifest->configDigest;
  for (const auto& l : manifest->layerPaths) {
    auto c = CleanArchivePath(l);
    if (!c || c->empty()) return MakeError(ErrorCode::kInvalidArgument, "manifest.json: [0].Layers: invalid path");
    plan.dockerLayers.push_back(*c);
  }
  return plan;
}

Status MkdirOwned(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return HostError("mkdir " + path);
  return {};
}

}  // namespace

namespace {

// A small file beneath `rootfs`, never through a symlink; "" if absent.
std::string ReadBeneath(const std::string& rootfs, const char* rel) {
  int dfd = open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return "";
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = syscall(SYS_openat2, dfd, rel, &how, sizeof how);
  close(dfd);
  if (fd < 0) return "";
  FdCloser c{static_cast<int>(fd)};
  struct stat st {};
  if (fstat(c.fd, &st) != 0 || !S_ISREG(st.st_mode)) return "";
  auto text = ReadAll(c.fd, rel);
  return text ? *text : "";
}

}  // namespace

Result<RunConfig> ResolveRunConfig(const StoredImage& image) {
  RunConfig rc;
  for (const auto& e : image.config.env) {
    auto eq = e.find('=');
    rc.env.emplace_back(e.substr(0, eq), e.substr(eq + 1));
  }
  rc.workingDir = image.config.workingDir;
  auto ids = ResolveUser(image.config.user, ReadBeneath(image.rootfs, "etc/passwd"),
                         ReadBeneath(image.rootfs, "etc/group"));
  if (!ids) return ids.error();
  rc.uid = ids->uid;
  rc.gid = ids->gid;
  return rc;
}

namespace {

Status ValidateTemplateName(const std::string& name) {
  auto bad = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "name: '" + Excerpt(name) + "' is not a template name ([A-Za-z0-9][A-Za-z0-9._-]{0,127})");
  };
  if (name.empty() || name.size() > 128 || !std::isalnum(static_cast<unsigned char>(name[0]))) return bad();
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return bad();
  if (name == "base") return MakeError(ErrorCode::kInvalidArgument, "name: 'base' is reserved (the host-dirs root)");
  return {};
}

}  // namespace

Status ImageStore::Tag(const std::string& name, const std::string& configDigest) const {
  if (auto s = ValidateTemplateName(name); !s) return s;
  if (auto s = ValidateDigest(configDigest, "digest"); !s) return s;
  for (const auto& d : {dir_, dir_ + "/names"})
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return HostError("mkdir " + d);
  const std::string path = dir_ + "/names/" + name, tmp = path + ".tmp-" + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return HostError("create " + tmp);
  const std::string text = configDigest + "\n";
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return HostError("write " + path);
  }
  return {};
}

Result<std::string> ImageStore::Resolve(const std::string& name) const {
  if (auto s = ValidateTemplateName(name); !s) return s.error();
  int fd = open((dir_ + "/names/" + name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return MakeError(ErrorCode::kNotFound, "template " + name + " not found");
  FdCloser c{fd};
  auto text = ReadAll(fd, "name " + name);
  if (!text) return text.error();
  std::string digest = *text;
  while (!digest.empty() && (digest.back() == '\n' || digest.back() == ' ')) digest.pop_back();
  if (auto s = ValidateDigest(digest, "names/" + name); !s) return s.error();
  return digest;
}

Status ImageStore::Untag(const std::string& name) const {
  if (auto s = ValidateTemplateName(name); !s) return s;
  if (unlink((dir_ + "/names/" + name).c_str()) != 0 && errno != ENOENT) return HostError("remove name " + name);
  return {};
}

std::vector<ImageStore::Named> ImageStore::ListNames() const {
  std::vector<Named> out;
  DIR* d = opendir((dir_ + "/names").c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || n.find(".tmp-") != std::string::npos) continue;
    if (auto digest = Resolve(n)) out.push_back({n, *digest});
  }
  closedir(d);
  std::sort(out.begin(), out.end(), [](const Named& a, const Named& b) { return a.name < b.name; });
  return out;
}

Result<StoredImage> ImageStore::Find(const std::string& configDigest) const {
  if (auto s = ValidateDigest(configDigest, "digest"); !s) return s.error();
  StoredImage img;
  img.configDigest = configDigest;
  img.dir = dir_ + "/sha256/" + configDigest.substr(7);
  img.rootfs = img.dir + "/rootfs";
  int fd = open((img.dir + "/config.json").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return MakeError(ErrorCode::kNotFound, "image " + configDigest + " is not stored");
  FdCloser c{fd};
  auto text = ReadAll(fd, "config.json");
  if (!text) return text.error();
  auto cfg = ParseImageConfig(*text, "config.json");
  if (!cfg) return cfg.error();
  img.config = std::move(*cfg);
  return img;
}

Status ImageStore::Remove(const std::string& configDigest) const {
  if (auto s = ValidateDigest(configDigest, "digest"); !s) return s.error();
  int fd = open((dir_ + "/sha256").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? Status{} : Status{HostError("open " + dir_)};
  FdCloser c{fd};
  return RemoveTreeAt(fd, configDigest.substr(7));
}

Result<StoredImage> ImageStore::Import(const std::string& path, const ImportLimits& limits) const {
  for (const auto& d : {dir_, dir_ + "/sha256", dir_ + "/tmp"})
    if (auto s = MkdirOwned(d, 0700); !s) return s.error();
  std::string scratchTemplate = dir_ + "/tmp/import-XXXXXX";
  if (!mkdtemp(scratchTemplate.data())) return HostError("mkdtemp in " + dir_);
  const std::string scratch = scratchTemplate;
  struct Cleanup {
    std::string tmp, name;
    ~Cleanup() {
      int fd = open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) {
        (void)RemoveTreeAt(fd, name);
        close(fd);
      }
    }
  } cleanup{dir_ + "/tmp", scratch.substr(scratch.rfind('/') + 1)};

  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return MakeError(ErrorCode::kInvalidArgument, "image: cannot read " + path);
  std::unique_ptr<Source> src;
  if (S_ISDIR(st.st_mode)) {
    int dfd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return HostError("open " + path);
    src = std::make_unique<DirSource>(dfd);
  } else {
    auto staged = ArchiveSource::Stage(path, scratch, limits.maxArchiveBytes);
    if (!staged) return staged.error();
    src = std::move(*staged);
  }

  // docker >= 25 writes both index.json and manifest.json; either is complete.
  Result<Plan> plan = src->Has("index.json")      ? PlanOci(*src)
                      : src->Has("manifest.json") ? PlanDocker(*src)
                                                  : Result<Plan>(MakeError(ErrorCode::kInvalidArgument,
                                                                           "image: neither index.json (OCI layout) "
                                                                           "nor manifest.json (docker save) found"));
  if (!plan) return plan.error();
  auto cfg = ParseImageConfig(plan->configText, "config " + plan->configDigest);
  if (!cfg) return cfg.error();
  plan->config = std::move(*cfg);
  const size_t layerCount = plan->ociLayers.size() + plan->dockerLayers.size();
  if (plan->config.diffIds.size() != layerCount)
    return MakeError(ErrorCode::kInvalidArgument, "config " + plan->configDigest + ": rootfs.diff_ids: " +
                                                      std::to_string(plan->config.diffIds.size()) + " entries for " +
                                                      std::to_string(layerCount) + " layers");

  if (auto existing = Find(plan->configDigest)) return existing;

  const std::string image = scratch + "/image", rootfs = image + "/rootfs";
  if (auto s = MkdirOwned(image, 0700); !s) return s.error();
  if (auto s = MkdirOwned(rootfs, 0755); !s) return s.error();
  int rootFd = open(rootfs.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootFd < 0) return HostError("open " + rootfs);
  FdCloser rc{rootFd};
  ApplyBudget budget{limits.maxUnpackedBytes, limits.maxEntries};
  for (size_t i = 0; i < layerCount; ++i) {
    Result<int> fd = MakeError(ErrorCode::kInternal, "");
    std::string name;
    if (!plan->ociLayers.empty()) {
      name = plan->ociLayers[i].first;
      fd = OpenVerified(*src, plan->ociLayers[i].second, name);
    } else {
      name = "layer " + std::to_string(i) + " (" + Excerpt(plan->dockerLayers[i]) + ")";
      fd = src->Open(plan->dockerLayers[i]);
    }
    if (!fd) return fd.error();
    FdCloser lc{*fd};
    auto diffId = UncompressedDigest(*fd, budget.bytesLeft + (64ull << 20), name);
    if (!diffId) return diffId.error();
    if (*diffId != plan->config.diffIds[i])
      return MakeError(ErrorCode::kInvalidArgument, name + ": digest mismatch: config's rootfs.diff_ids[" +
                                                        std::to_string(i) + "] is " + plan->config.diffIds[i] +
                                                        ", uncompressed content is " + *diffId);
    if (auto s = ApplyLayer(rootFd, *fd, name, budget); !s) return s.error();
  }
  const std::string cfgPath = image + "/config.json";
  int cfd = open(cfgPath.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (cfd < 0) return HostError("create " + cfgPath);
  {
    FdCloser c{cfd};
    if (write(cfd, plan->configText.data(), plan->configText.size()) != static_cast<ssize_t>(plan->configText.size()))
      return HostError("write " + cfgPath);
    if (fsync(cfd) != 0) return HostError("fsync " + cfgPath);
  }
  const std::string final = dir_ + "/sha256/" + plan->configDigest.substr(7);
  if (rename(image.c_str(), final.c_str()) != 0 && errno != EEXIST && errno != ENOTEMPTY)
    return HostError("rename into " + final);
  return Find(plan->configDigest);
}

Result<VerifiedImage> VerifyImageArchive(const std::string& path, const std::string& scratchDir,
                                         const ImportLimits& limits) {
  if (auto st = MkdirOwned(scratchDir, 0700); !st) return st.error();
  std::string scratchTemplate = scratchDir + "/verify-XXXXXX";
  if (!mkdtemp(scratchTemplate.data())) return HostError("mkdtemp in " + scratchDir);
  struct Cleanup {
    std::string dir, name;
    ~Cleanup() {
      int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) {
        (void)RemoveTreeAt(fd, name);
        close(fd);
      }
    }
  } cleanup{scratchDir, scratchTemplate.substr(scratchTemplate.rfind('/') + 1)};
  auto src = ArchiveSource::Stage(path, scratchTemplate, limits.maxArchiveBytes);
  if (!src) return src.error();
  Result<Plan> plan = (*src)->Has("index.json")      ? PlanOci(**src)
                      : (*src)->Has("manifest.json") ? PlanDocker(**src)
                                                     : Result<Plan>(MakeError(ErrorCode::kInvalidArgument,
                                                                              "image: neither index.json (OCI layout) "
                                                                              "nor manifest.json (docker save) found"));
  if (!plan) return plan.error();
  auto cfg = ParseImageConfig(plan->configText, "config " + plan->configDigest);
  if (!cfg) return cfg.error();
  const size_t layerCount = plan->ociLayers.size() + plan->dockerLayers.size();
  if (cfg->diffIds.size() != layerCount)
    return MakeError(ErrorCode::kInvalidArgument, "config " + plan->configDigest + ": rootfs.diff_ids: " +
                                                      std::to_string(cfg->diffIds.size()) + " entries for " +
                                                      std::to_string(layerCount) + " layers");
  ApplyBudget budget{limits.maxUnpackedBytes, limits.maxEntries};
  std::set<std::string> symlinks;
  for (size_t i = 0; i < layerCount; ++i) {
    Result<int> fd = MakeError(ErrorCode::kInternal, "");
    std::string name;
    if (!plan->ociLayers.empty()) {
      name = plan->ociLayers[i].first;
      fd = OpenVerified(**src, plan->ociLayers[i].second, name);
    } else {
      name = "layer " + std::to_string(i) + " (" + Excerpt(plan->dockerLayers[i]) + ")";
      fd = (*src)->Open(plan->dockerLayers[i]);
    }
    if (!fd) return fd.error();
    FdCloser lc{*fd};
    auto diffId = UncompressedDigest(*fd, budget.bytesLeft + (64ull << 20), name);
    if (!diffId) return diffId.error();
    if (*diffId != cfg->diffIds[i])
      return MakeError(ErrorCode::kInvalidArgument, name + ": digest mismatch: config's rootfs.diff_ids[" +
                                                        std::to_string(i) + "] is " + cfg->diffIds[i] +
                                                        ", uncompressed content is " + *diffId);
    if (auto st = ScanLayer(*fd, name, budget, symlinks); !st) return st.error();
  }
  VerifiedImage out;
  out.configDigest = plan->configDigest;
  out.config = std::move(*cfg);
  out.layers = layerCount;
  return out;
}

}  // namespace osb::images
