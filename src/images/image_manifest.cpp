#include "images/image_manifest.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace osb::images {
namespace {

using json = nlohmann::json;

Error Bad(const std::string& where, const std::string& what) {
  return MakeError(ErrorCode::kInvalidArgument, where + ": " + what);
}

Result<json> ParseJson(std::string_view text, const std::string& doc) {
  if (text.size() > kMaxJsonBytes) return Bad(doc, "larger than 4 MiB");
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(doc, "not valid JSON");
  return j;
}

const json* Member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string StringOr(const json& obj, const char* key) {
  const json* v = Member(obj, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

Result<Descriptor> ParseDescriptor(const json& d, const std::string& where) {
  if (!d.is_object()) return Bad(where, "must be an object");
  Descriptor out;
  out.mediaType = StringOr(d, "mediaType");
  const json* digest = Member(d, "digest");
  if (!digest || !digest->is_string()) return Bad(where + ".digest", "missing");
  out.digest = digest->get<std::string>();
  if (auto s = ValidateDigest(out.digest, where + ".digest"); !s) return s.error();
  const json* size = Member(d, "size");
  if (!size || !size->is_number_unsigned()) return Bad(where + ".size", "must be a non-negative integer");
  out.size = size->get<uint64_t>();
  if (const json* p = Member(d, "platform"); p && p->is_object())
    out.platform = StringOr(*p, "os") + "/" + StringOr(*p, "architecture");
  return out;
}

bool ParseId(std::string_view s, uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return false;
  if (v > UINT32_MAX) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

// Fields of a passwd/group line: name:x:id:(gid|members):...
std::vector<std::string_view> SplitColon(std::string_view line) {
  std::vector<std::string_view> f;
  size_t start = 0;
  for (;;) {
    size_t c = line.find(':', start);
    f.push_back(line.substr(start, c == std::string_view::npos ? std::string_view::npos : c - start));
    if (c == std::string_view::npos || f.size() > 8) break;
    start = c + 1;
  }
  return f;
}

template <typename Fn>
void ForEachLine(std::string_view text, Fn fn) {
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line = text.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    if (!line.empty() && line[0] != '#' && fn(SplitColon(line))) return;
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
}

}  // namespace

std::string Excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 64) out += "...";
  return out;
}

Status ValidateDigest(std::string_view digest, const std::string& field) {
  auto colon = digest.find(':');
  if (colon == std::string_view::npos) return Bad(field, "not an algorithm:hex digest");
  if (digest.substr(0, colon) != "sha256")
    return Bad(field, "unsupported digest algorithm '" + Excerpt(digest.substr(0, colon)) + "' (only sha256)");
  std::string_view hex = digest.substr(colon + 1);
  if (hex.size() != 64) return Bad(field, "sha256 digest must be 64 hex characters");
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return Bad(field, "sha256 digest must be lowercase hex");
  return {};
}

bool IsIndexMediaType(std::string_view mt) {
  return mt == "application/vnd.oci.image.index.v1+json" ||
         mt == "application/vnd.docker.distribution.manifest.list.v2+json";
}

Result<Descriptor> ParseOciIndex(std::string_view text, const std::string& doc) {
  auto j = ParseJson(text, doc);
  if (!j) return j.error();
  const json* ms = Member(*j, "manifests");
  if (!ms || !ms->is_array() || ms->empty()) return Bad(doc + ": manifests", "must be a non-empty array");
  if (ms->size() > 1024) return Bad(doc + ": manifests", "more than 1024 entries");
  std::optional<Descriptor> first, amd64;
  for (size_t i = 0; i < ms->size(); ++i) {
    auto d = ParseDescriptor((*ms)[i], doc + ": manifests[" + std::to_string(i) + "]");
    if (!d) return d.error();
    // Attestations and other artifacts carry an "unknown/unknown" platform.
    if (d->platform == "unknown/unknown") continue;
    if (!first) first = *d;
    if (!amd64 && d->platform == "linux/amd64") amd64 = *d;
  }
  if (amd64) return *amd64;
  if (first) return *first;
  return Bad(doc + ": manifests", "no image manifest");
}

Result<OciManifest> ParseOciManifest(std::string_view text, const std::string& doc) {
  auto j = ParseJson(text, doc);
  if (!j) return j.error();
  if (!j->is_object()) return Bad(doc, "must be an object");
  const std::string mt = StringOr(*j, "mediaType");
  if (!mt.empty() && mt != "application/vnd.oci.image.manifest.v1+json" &&
      mt != "application/vnd.docker.distribution.manifest.v2+json")
    return Bad(doc + ": mediaType", "not an image manifest: " + Excerpt(mt));
  const json* cfg = Member(*j, "config");
  if (!cfg) return Bad(doc + ": config", "missing");
  OciManifest out;
  auto c = ParseDescriptor(*cfg, doc + ": config");
  if (!c) return c.error();
  out.config = *c;
  const json* layers = Member(*j, "layers");
  if (!layers || !layers->is_array()) return Bad(doc + ": layers", "must be an array");
  if (layers->size() > kMaxLayers) return Bad(doc + ": layers", "more than 256 layers");
  for (size_t i = 0; i < layers->size(); ++i) {
    auto d = ParseDescriptor((*layers)[i], doc + ": layers[" + std::to_string(i) + "]");
    if (!d) return d.error();
    if (CompressionFromMediaType(d->mediaType) == Compression::kUnknown)
      return Bad(doc + ": layers[" + std::to_string(i) + "].mediaType",
                 "unsupported layer media type " + Excerpt(d->mediaType));
    out.layers.push_back(std::move(*d));
  }
  return out;
}

Result<DockerManifest> ParseDockerManifest(std::string_view text) {
  const std::string doc = "manifest.json";
  auto j = ParseJson(text, doc);
  if (!j) return j.error();
  if (!j->is_array() || j->empty()) return Bad(doc, "must be a non-empty array");
  const json& m = (*j)[0];
  DockerManifest out;
  out.configPath = StringOr(m, "Config");
  if (out.configPath.empty()) return Bad(doc + ": [0].Config", "missing");
  // The config's file name is its digest: "<hex>.json" (docker < 25) or
  // "blobs/sha256/<hex>" (docker >= 25, podman).
  std::string_view name = out.configPath;
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name = name.substr(slash + 1);
  if (name.ends_with(".json")) name.remove_suffix(5);
  out.configDigest = "sha256:" + std::string(name);
  if (auto s = ValidateDigest(out.configDigest, doc + ": [0].Config"); !s)
    return Bad(doc + ": [0].Config", "file name carries no sha256 digest: " + Excerpt(out.configPath));
  const json* layers = Member(m, "Layers");
  if (!layers || !layers->is_array()) return Bad(doc + ": [0].Layers", "must be an array");
  if (layers->size() > kMaxLayers) return Bad(doc + ": [0].Layers", "more than 256 layers");
  for (size_t i = 0; i < layers->size(); ++i) {
    const json& l = (*layers)[i];
    if (!l.is_string() || l.get<std::string>().empty())
      return Bad(doc + ": [0].Layers[" + std::to_string(i) + "]", "must be a path");
    out.layerPaths.push_back(l.get<std::string>());
  }
  return out;
}

Result<ImageConfig> ParseImageConfig(std::string_view text, const std::string& doc) {
  auto j = ParseJson(text, doc);
  if (!j) return j.error();
  if (!j->is_object()) return Bad(doc, "must be an object");
  ImageConfig out;
  if (const json* c = Member(*j, "config"); c && !c->is_null()) {
    if (!c->is_object()) return Bad(doc + ": config", "must be an object");
    if (const json* env = Member(*c, "Env"); env && !env->is_null()) {
      if (!env->is_array()) return Bad(doc + ": config.Env", "must be an array of strings");
      for (const auto& e : *env) {
        if (!e.is_string()) return Bad(doc + ": config.Env", "must be an array of strings");
        const std::string s = e.get<std::string>();
        auto eq = s.find('=');
        if (eq == 0 || eq == std::string::npos || s.find('\0') != std::string::npos)
          return Bad(doc + ": config.Env", "entry is not NAME=value: " + Excerpt(s.substr(0, eq)));
        out.env.push_back(s);
      }
    }
    out.workingDir = StringOr(*c, "WorkingDir");
    if (!out.workingDir.empty() && (out.workingDir[0] != '/' || out.workingDir.find('\0') != std::string::npos ||
                                    out.workingDir.size() > 4096))
      return Bad(doc + ": config.WorkingDir", "must be an absolute path");
    out.user = StringOr(*c, "User");
    if (out.user.size() > 256 || out.user.find('\0') != std::string::npos)
      return Bad(doc + ": config.User", "invalid");
  }
  const json* rootfs = Member(*j, "rootfs");
  const json* ids = rootfs ? Member(*rootfs, "diff_ids") : nullptr;
  if (!ids || !ids->is_array()) return Bad(doc + ": rootfs.diff_ids", "must be an array");
  if (ids->size() > kMaxLayers) return Bad(doc + ": rootfs.diff_ids", "more than 256 layers");
  for (size_t i = 0; i < ids->size(); ++i) {
    const std::string field = doc + ": rootfs.diff_ids[" + std::to_string(i) + "]";
    if (!(*ids)[i].is_string()) return Bad(field, "must be a digest");
    std::string d = (*ids)[i].get<std::string>();
    if (auto s = ValidateDigest(d, field); !s) return s.error();
    out.diffIds.push_back(std::move(d));
  }
  return out;
}

Compression CompressionFromMediaType(std::string_view mt) {
  if (mt == "application/vnd.oci.image.layer.v1.tar" || mt == "application/vnd.docker.image.rootfs.diff.tar")
    return Compression::kNone;
  if (mt == "application/vnd.oci.image.layer.v1.tar+gzip" ||
      mt == "application/vnd.docker.image.rootfs.diff.tar.gzip")
    return Compression::kGzip;
  if (mt == "application/vnd.oci.image.layer.v1.tar+zstd") return Compression::kZstd;
  return Compression::kUnknown;
}

Compression SniffCompression(std::string_view head) {
  if (head.size() >= 2 && static_cast<uint8_t>(head[0]) == 0x1f && static_cast<uint8_t>(head[1]) == 0x8b)
    return Compression::kGzip;
  if (head.size() >= 4 && head.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) return Compression::kZstd;
  return Compression::kNone;
}

Result<UserIds> ResolveUser(std::string_view user, std::string_view passwd, std::string_view group) {
  UserIds out;
  if (user.empty()) return out;
  std::string_view u = user, g;
  bool hasGroup = false;
  if (auto c = user.find(':'); c != std::string_view::npos) {
    u = user.substr(0, c);
    g = user.substr(c + 1);
    hasGroup = true;
  }
  bool found = false;
  const bool numericUser = ParseId(u, out.uid);
  ForEachLine(passwd, [&](const std::vector<std::string_view>& f) {
    if (f.size() < 4) return false;
    uint32_t uid = 0;
    if (!ParseId(f[2], uid)) return false;
    if (numericUser ? uid != out.uid : f[0] != u) return false;
    out.uid = uid;
    if (!ParseId(f[3], out.gid)) out.gid = 0;
    if (f.size() >= 6) out.home = std::string(f[5]);
    found = true;
    return true;
  });
  if (!found && !numericUser) return Bad("User", "unknown user '" + Excerpt(u) + "' (not in the image's /etc/passwd)");
  if (hasGroup) {
    if (!ParseId(g, out.gid)) {
      bool gfound = false;
      ForEachLine(group, [&](const std::vector<std::string_view>& f) {
        if (f.size() < 3 || f[0] != g) return false;
        gfound = ParseId(f[2], out.gid);
        return gfound;
      });
      if (!gfound) return Bad("User", "unknown group '" + Excerpt(g) + "' (not in the image's /etc/group)");
    }
  }
  if (out.uid > 65535 || out.gid > 65535) return Bad("User", "uid and gid must be at most 65535");
  return out;
}

std::optional<std::string> CleanArchivePath(std::string_view path) {
  if (path.size() > 4096 || path.find('\0') != std::string_view::npos) return std::nullopt;
  if (!path.empty() && path[0] == '/') return std::nullopt;
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view comp =
        path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (comp == "..") return std::nullopt;
    if (!comp.empty() && comp != ".") {
      if (!out.empty()) out += '/';
      out += comp;
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

}  // namespace osb::images
