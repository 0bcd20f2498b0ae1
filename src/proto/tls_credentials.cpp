#include "proto/tls_credentials.h"

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

// gRPC 1.51's C++ API has no way to set a minimum TLS version, but its core
// credential classes export non-virtual setters that do exactly that. These
// declarations match those exported symbols; the objects we call them on
// are created by the C API functions that construct exactly these classes.
class grpc_ssl_server_credentials {
 public:
  void set_min_tls_version(grpc_tls_version min_tls_version);
};
class grpc_ssl_credentials {
 public:
  void set_min_tls_version(grpc_tls_version min_tls_version);
};

namespace osb::proto {
namespace {

constexpr const char* kCaEnv = "OPENSANDBOX_GRPC_TLS_CA";
constexpr const char* kCertEnv = "OPENSANDBOX_GRPC_TLS_CERT";
constexpr const char* kKeyEnv = "OPENSANDBOX_GRPC_TLS_KEY";

Result<std::string> ReadPem(const char* what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     std::string(what) + ": cannot read " + path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().find("-----BEGIN") == std::string::npos) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + ": " + path + " is not PEM");
  }
  return ss.str();
}

X509* ParseCert(const char* pem, size_t size) {
  BIO* bio = BIO_new_mem_buf(pem, static_cast<int>(size));
  if (bio == nullptr) return nullptr;
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return cert;
}

std::optional<GrpcRole> RoleOf(const char* pem, size_t size) {
  X509* cert = ParseCert(pem, size);
  if (cert == nullptr) return std::nullopt;
  const X509_NAME* subject = X509_get_subject_name(cert);
  std::optional<GrpcRole> role;
  int found = 0;
  for (int i = X509_NAME_get_index_by_NID(subject, NID_organizationalUnitName, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(subject, NID_organizationalUnitName, i)) {
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    const std::string unit(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                           static_cast<size_t>(ASN1_STRING_length(data)));
    for (GrpcRole r : {GrpcRole::kControlPlane, GrpcRole::kWorker}) {
      if (unit == RoleUnit(r)) {
        role = r;
        ++found;
      }
    }
  }
  X509_free(cert);
  if (found != 1) return std::nullopt;  // none, or ambiguous
  return role;
}

// The role the peer's certificate must carry, as opaque user data for the
// C callbacks below (static storage: never freed).
void* RoleData(GrpcRole role) {
  static GrpcRole roles[] = {GrpcRole::kControlPlane, GrpcRole::kWorker};
  return &roles[role == GrpcRole::kControlPlane ? 0 : 1];
}

// Client side: the server's certificate (already verified against the CA
// and the target name) must carry the expected role. Non-zero = refuse.
int VerifyServerRole(const char* /*target_name*/, const char* peer_pem, void* userdata) {
  if (peer_pem == nullptr) return 1;
  const auto role = RoleOf(peer_pem, std::strlen(peer_pem));
  return role && *role == *static_cast<GrpcRole*>(userdata) ? 0 : 1;
}

// Server side, on every call: the client's verified certificate must carry
// the expected role.
void ProcessCallerRole(void* state, grpc_auth_context* context, const grpc_metadata*, size_t,
                       grpc_process_auth_metadata_done_cb cb, void* user_data) {
  const GrpcRole want = *static_cast<GrpcRole*>(state);
  std::optional<GrpcRole> got;
  grpc_auth_property_iterator it =
      grpc_auth_context_find_properties_by_name(context, GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (const grpc_auth_property* p = grpc_auth_property_iterator_next(&it)) {
    got = RoleOf(p->value, p->value_length);
  }
  if (got && *got == want) {
    cb(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_OK, nullptr);
    return;
  }
  const std::string why = std::string("the caller's certificate is not a ") + RoleUnit(want) +
                          " certificate (OU=" + RoleUnit(want) + ")";
  cb(user_data, nullptr, 0, nullptr, 0, GRPC_STATUS_PERMISSION_DENIED, why.c_str());
}

// Mutual-TLS server credentials built through the core API so the minimum
// TLS version can be raised to 1.3 and the caller's role checked.
class MutualTlsServerCredentials final : public grpc::ServerCredentials {
 public:
  MutualTlsServerCredentials(GrpcTlsMaterial tls, GrpcRole peer) : tls_(std::move(tls)), peer_(peer) {}
  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {}

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    grpc_ssl_pem_key_cert_pair pair{tls_.key_pem.c_str(), tls_.cert_pem.c_str()};
    grpc_server_credentials* creds = grpc_ssl_server_credentials_create_ex(
        tls_.ca_pem.c_str(), &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY,
        nullptr);
    if (creds == nullptr) return 0;
    reinterpret_cast<grpc_ssl_server_credentials*>(creds)->set_min_tls_version(TLS1_3);
    grpc_server_credentials_set_auth_metadata_processor(creds, {ProcessCallerRole, nullptr, RoleData(peer_)});
    const int port = grpc_server_add_http2_port(server, addr.c_str(), creds);
    grpc_server_credentials_release(creds);
    return port;
  }

  GrpcTlsMaterial tls_;
  GrpcRole peer_;
};

}  // namespace

const char* RoleUnit(GrpcRole role) {
  return role == GrpcRole::kControlPlane ? "osb-control-plane" : "osb-worker";
}

Status CheckOwnRole(const GrpcTlsMaterial& tls, GrpcRole role) {
  const auto have = CertificateRole(tls.cert_pem);
  if (have && *have == role) return {};
  const std::string role_arg = role == GrpcRole::kControlPlane ? "control-plane" : "worker";
  return MakeError(ErrorCode::kInvalidArgument,
                   std::string(kCertEnv) + ": this process needs a " + RoleUnit(role) +
                       " certificate (subject OU=" + RoleUnit(role) + "), the one given is " +
                       (have ? std::string("a ") + RoleUnit(*have) + " certificate" : "without a role") +
                       "; make one with scripts/gen-grpc-certs.sh DIR " + role_arg + " NAME");
}

Result<GrpcTlsMaterial> LoadGrpcTls(const GrpcTlsFiles& files) {
  auto ca = ReadPem(kCaEnv, files.ca_path);
  if (!ca) return ca.error();
  auto cert = ReadPem(kCertEnv, files.cert_path);
  if (!cert) return cert.error();
  auto key = ReadPem(kKeyEnv, files.key_path);
  if (!key) return key.error();
  return GrpcTlsMaterial{std::move(*ca), std::move(*cert), std::move(*key)};
}

Result<std::optional<GrpcTlsMaterial>> GrpcTlsFromEnvironment(
    const std::function<const char*(const char*)>& getenv_fn) {
  auto get = [&](const char* name) -> std::string {
    const char* v = getenv_fn ? getenv_fn(name) : std::getenv(name);
    return v ? v : "";
  };
  GrpcTlsFiles files{get(kCaEnv), get(kCertEnv), get(kKeyEnv)};
  const int set = !files.ca_path.empty() + !files.cert_path.empty() + !files.key_path.empty();
  if (set == 0) return std::optional<GrpcTlsMaterial>();
  if (set != 3) {
    std::string missing;
    for (const auto& [name, value] : {std::pair{kCaEnv, files.ca_path},
                                      std::pair{kCertEnv, files.cert_path},
                                      std::pair{kKeyEnv, files.key_path}}) {
      if (value.empty()) missing += (missing.empty() ? "" : ", ") + std::string(name);
    }
    return MakeError(ErrorCode::kInvalidArgument,
                     "mutual TLS needs all of OPENSANDBOX_GRPC_TLS_CA, _CERT and _KEY; missing " +
                         missing);
  }
  auto tls = LoadGrpcTls(files);
  if (!tls) return tls.error();
  return std::optional<GrpcTlsMaterial>(std::move(*tls));
}

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const std::optional<GrpcTlsMaterial>& tls, GrpcRole peer) {
  if (!tls) return grpc::InsecureServerCredentials();
  return std::make_shared<MutualTlsServerCredentials>(*tls, peer);
}

namespace {

// HTTP/2 flow control with a fixed stream window instead of BDP probing.
// BDP probing grows the window with bandwidth x round-trip time, and on a
// loaded machine the round trip is long: a file transfer whose far end
// drains slowly (a tmpfs write, a slow HTTP client) then parked ~50-100 MiB
// in the receiver's gRPC buffers (issue 15's RSS bound is 32 MiB). 2 MiB
// keeps two 1 MiB file chunks in flight per stream, which is what the
// pipeline needs; the window is only room, so idle streams cost nothing.
constexpr int kStreamWindowBytes = 2 << 20;

}  // namespace

void AddGrpcListener(grpc::ServerBuilder& builder, const std::string& address,
                     const std::optional<GrpcTlsMaterial>& tls, GrpcRole peer, int* selected_port) {
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kStreamWindowBytes);
  builder.AddListeningPort(address, MakeServerCredentials(tls, peer), selected_port);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target,
                                           const std::optional<GrpcTlsMaterial>& tls, GrpcRole peer) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, kStreamWindowBytes);
  if (!tls) return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  // The core C calls below need gRPC initialised; nothing else may have done
  // it yet (the worker builds its template channel before any server or C++
  // channel exists, and grpc_channel_create then crashed in the event engine).
  // The Channel made at the end holds its own reference from then on.
  grpc_init();
  struct Release {
    ~Release() { grpc_shutdown(); }
  } release;
  grpc_ssl_pem_key_cert_pair pair{tls->key_pem.c_str(), tls->cert_pem.c_str()};
  grpc_ssl_verify_peer_options verify{VerifyServerRole, RoleData(peer), nullptr};
  grpc_channel_credentials* creds =
      grpc_ssl_credentials_create_ex(tls->ca_pem.c_str(), &pair, &verify, nullptr);
  reinterpret_cast<grpc_ssl_credentials*>(creds)->set_min_tls_version(TLS1_3);
  const grpc_channel_args c_args = args.c_channel_args();
  grpc_channel* channel = grpc_channel_create(target.c_str(), creds, &c_args);
  grpc_channel_credentials_release(creds);
  return grpc::CreateChannelInternal("", channel, {});
}

std::optional<std::string> CertificateCommonName(const std::string& cert_pem) {
  X509* cert = ParseCert(cert_pem.data(), cert_pem.size());
  if (cert == nullptr) return std::nullopt;
  char cn[256] = {};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  X509_free(cert);
  if (n <= 0) return std::nullopt;
  return std::string(cn, static_cast<size_t>(n));
}

std::optional<std::string> PeerCommonName(const grpc::ServerContext& context) {
  const auto auth = context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return std::nullopt;
  const auto values = auth->FindPropertyValues("x509_common_name");
  if (values.empty()) return std::string();
  return std::string(values.front().data(), values.front().size());
}

}  // namespace osb::proto

namespace osb::proto {

std::optional<GrpcRole> CertificateRole(const std::string& cert_pem) {
  return RoleOf(cert_pem.data(), cert_pem.size());
}

std::optional<GrpcRole> PeerRole(const grpc::ServerContext& context) {
  const auto auth = context.auth_context();
  if (!auth || !auth->IsPeerAuthenticated()) return std::nullopt;
  const auto values = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (values.empty()) return std::nullopt;
  return RoleOf(values.front().data(), values.front().size());
}

}  // namespace osb::proto
