#include "proto/grpc_certs.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "common/secure_memory.h"
#include "common/x509_build.h"

namespace osb::proto {
namespace {

namespace fs = std::filesystem;

struct Free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  void operator()(X509* c) const { X509_free(c); }
  void operator()(X509_NAME* n) const { X509_NAME_free(n); }
  void operator()(BIO* b) const { BIO_free(b); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

Error Failed(const std::string& what) { return MakeError(ErrorCode::kInternal, "gRPC certificates: " + what); }

bool AddName(X509_NAME* name, const char* field, const std::string& value) {
  return X509_NAME_add_entry_by_txt(name, field, MBSTRING_ASC, reinterpret_cast<const unsigned char*>(value.c_str()),
                                    -1, -1, 0) == 1;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string KeyPem(EVP_PKEY* key) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) return {};
  std::string pem = BioText(bio.get());
  // The BIO's buffer held the key: wipe it before it is freed.
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio.get(), &mem);
  if (mem != nullptr) SecureWipe(mem->data, mem->length);
  return pem;
}

std::string CertPem(X509* cert) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), cert)) return {};
  return BioText(bio.get());
}

Ptr<EVP_PKEY> ReadKey(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Ptr<EVP_PKEY>(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

Ptr<X509> ReadCert(const std::string& pem) {
  Ptr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Ptr<X509>(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
}

Status WritePrivate(const fs::path& path, const std::string& content, mode_t mode) {
  const fs::path tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return MakeError(ErrorCode::kFailedPrecondition, "cannot create " + tmp.string() + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ::close(fd);
      return MakeError(ErrorCode::kFailedPrecondition, "cannot write " + tmp.string() + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return MakeError(ErrorCode::kFailedPrecondition, "cannot rename to " + path.string() + ": " + std::strerror(errno));
  }
  return {};
}

}  // namespace

Result<std::pair<std::string, std::string>> MakeGrpcCa() {
  Ptr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  Ptr<X509> cert(X509_new());
  Ptr<X509_NAME> name(X509_NAME_new());
  const bool ok = key && cert && name && X509_set_version(cert.get(), 2) && SetRandomSerial(cert.get()) &&
                  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) &&
                  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 24 * 3600) &&
                  AddName(name.get(), "O", "OpenSandbox") && AddName(name.get(), "CN", "OpenSandbox dev gRPC CA") &&
                  X509_set_subject_name(cert.get(), name.get()) && X509_set_issuer_name(cert.get(), name.get()) &&
                  X509_set_pubkey(cert.get(), key.get()) &&
                  AddX509Extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
                  AddX509Extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign") &&
                  AddX509Extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash") &&
                  X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) return Failed("cannot make the CA");
  return std::pair{CertPem(cert.get()), KeyPem(key.get())};
}

Result<GrpcTlsMaterial> IssueGrpcCertificate(const std::string& ca_cert_pem, const std::string& ca_key_pem,
                                             GrpcRole role, const std::string& cn) {
  Ptr<X509> ca = ReadCert(ca_cert_pem);
  Ptr<EVP_PKEY> ca_key = ReadKey(ca_key_pem);
  if (!ca || !ca_key) return Failed("the CA certificate or key is unreadable");
  Ptr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  Ptr<X509> cert(X509_new());
  Ptr<X509_NAME> name(X509_NAME_new());
  const bool ok = key && cert && name && X509_set_version(cert.get(), 2) && SetRandomSerial(cert.get()) &&
                  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) &&
                  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 825L * 24 * 3600) &&
                  AddName(name.get(), "O", "OpenSandbox") && AddName(name.get(), "OU", RoleUnit(role)) &&
                  AddName(name.get(), "CN", cn) && X509_set_subject_name(cert.get(), name.get()) &&
                  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get())) &&
                  X509_set_pubkey(cert.get(), key.get()) &&
                  AddX509Extension(cert.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE") &&
                  AddX509Extension(cert.get(), ca.get(), NID_key_usage, "critical,digitalSignature") &&
                  AddX509Extension(cert.get(), ca.get(), NID_ext_key_usage, "serverAuth,clientAuth") &&
                  AddX509Extension(cert.get(), ca.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") &&
                  X509_sign(cert.get(), ca_key.get(), EVP_sha256()) > 0;
  if (!ok) return Failed("cannot issue the " + std::string(RoleUnit(role)) + " certificate");
  return GrpcTlsMaterial{ca_cert_pem, CertPem(cert.get()), KeyPem(key.get())};
}

Result<DevGrpcTls> EnsureDevGrpcTls(const std::string& dir_str) {
  const fs::path dir(dir_str);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), 0700) != 0) {
    return MakeError(ErrorCode::kFailedPrecondition, "cannot create " + dir.string() + " (mode 0700)");
  }
  const fs::path ca_crt = dir / "ca.crt", ca_key = dir / "ca.key";
  const fs::path cp_crt = dir / "control-plane.crt", cp_key = dir / "control-plane.key";
  const fs::path w_crt = dir / "worker.crt", w_key = dir / "worker.key";
  DevGrpcTls out;
  bool complete = true;
  for (const auto& p : {ca_crt, ca_key, cp_crt, cp_key, w_crt, w_key}) complete &= fs::exists(p);
  if (!complete) {
    auto ca = MakeGrpcCa();
    if (!ca) return ca.error();
    auto cp = IssueGrpcCertificate(ca->first, ca->second, GrpcRole::kControlPlane, "control-plane");
    if (!cp) return cp.error();
    auto worker = IssueGrpcCertificate(ca->first, ca->second, GrpcRole::kWorker, "dev-worker");
    if (!worker) return worker.error();
    for (const auto& [path, content, mode] :
         {std::tuple{ca_key, &ca->second, 0600}, std::tuple{cp_key, &cp->key_pem, 0600},
          std::tuple{w_key, &worker->key_pem, 0600}, std::tuple{ca_crt, &ca->first, 0644},
          std::tuple{cp_crt, &cp->cert_pem, 0644}, std::tuple{w_crt, &worker->cert_pem, 0644}}) {
      if (auto s = WritePrivate(path, *content, static_cast<mode_t>(mode)); !s) return s.error();
    }
    SecureWipe(ca->second);
    out.created = true;
  }
  auto cp = LoadGrpcTls({ca_crt.string(), cp_crt.string(), cp_key.string()});
  if (!cp) return cp.error();
  auto worker = LoadGrpcTls({ca_crt.string(), w_crt.string(), w_key.string()});
  if (!worker) return worker.error();
  if (auto s = CheckOwnRole(*cp, GrpcRole::kControlPlane); !s) return s.error();
  if (auto s = CheckOwnRole(*worker, GrpcRole::kWorker); !s) return s.error();
  out.control_plane = std::move(*cp);
  out.worker = std::move(*worker);
  return out;
}

}  // namespace osb::proto
