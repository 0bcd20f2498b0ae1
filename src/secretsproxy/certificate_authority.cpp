#include "secretsproxy/certificate_authority.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ssl/context.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/x509_build.h"
#include "secretsproxy/host_rules.h"

namespace osb::secretsproxy {
namespace fs = std::filesystem;

struct CertificateAuthority::Entry {
  std::mutex mu;  // single flight: held while generating
  std::shared_ptr<boost::asio::ssl::context> ctx;
  std::chrono::steady_clock::time_point made;
  std::list<std::string>::iterator lru_pos;
};

namespace {

constexpr auto kLeafLifetime = std::chrono::hours(24);
constexpr auto kLeafRefresh = std::chrono::hours(12);

Error SslError(const std::string& what) { return MakeError(ErrorCode::kInternal, "CA: " + what); }

EVP_PKEY* NewP256Key() { return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); }

X509* MakeCaCert(EVP_PKEY* key) {
  X509* cert = X509_new();
  X509_NAME* name = X509_NAME_new();
  bool ok = cert && name && X509_set_version(cert, 2) && SetRandomSerial(cert) &&
            X509_gmtime_adj(X509_getm_notBefore(cert), -3600) &&
            X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 365 * 24 * 3600) &&
            X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>("OpenSandbox"), -1, -1, 0) &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       reinterpret_cast<const unsigned char*>("OpenSandbox secrets proxy CA"),
                                       -1, -1, 0) &&
            X509_set_subject_name(cert, name) && X509_set_issuer_name(cert, name) && X509_set_pubkey(cert, key) &&
            AddX509Extension(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
            AddX509Extension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") &&
            AddX509Extension(cert, cert, NID_subject_key_identifier, "hash") &&
            X509_sign(cert, key, EVP_sha256()) > 0;
  X509_NAME_free(name);
  if (!ok) {
    X509_free(cert);
    return nullptr;
  }
  return cert;
}

std::string ToPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio && PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr)) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  return out;
}

std::string ToPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio && PEM_write_bio_X509(bio, cert)) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    out.assign(data, static_cast<size_t>(n));
  }
  BIO_free(bio);
  return out;
}

// Writes `data` to `path` atomically with `mode` (temp file + rename).
Status WriteFileAtomic(const fs::path& path, const std::string& data, mode_t mode) {
  fs::path tmp = path;
  tmp += ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return MakeError(ErrorCode::kInternal, "state-dir: cannot create " + tmp.string());
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) {
      ::close(fd);
      return MakeError(ErrorCode::kInternal, "state-dir: cannot write " + tmp.string());
    }
    off += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return MakeError(ErrorCode::kInternal, "state-dir: cannot rename into " + path.string());
  }
  return {};
}

Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(ErrorCode::kInternal, "state-dir: cannot read " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<std::unique_ptr<CertificateAuthority>> CertificateAuthority::LoadOrCreate(const fs::path& state_dir,
                                                                                 size_t cache_capacity) {
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec) return MakeError(ErrorCode::kInvalidArgument, "state-dir: cannot create " + state_dir.string());
  std::unique_ptr<CertificateAuthority> ca(new CertificateAuthority());
  ca->capacity_ = cache_capacity == 0 ? 1 : cache_capacity;
  ca->cert_path_ = state_dir / "ca.crt";
  const fs::path key_path = state_dir / "ca.key";

  if (fs::exists(key_path) && fs::exists(ca->cert_path_)) {
    auto key_pem = ReadFile(key_path);
    auto cert_pem = ReadFile(ca->cert_path_);
    if (!key_pem) return key_pem.error();
    if (!cert_pem) return cert_pem.error();
    BIO* kb = BIO_new_mem_buf(key_pem->data(), static_cast<int>(key_pem->size()));
    BIO* cb = BIO_new_mem_buf(cert_pem->data(), static_cast<int>(cert_pem->size()));
    ca->ca_key_ = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    ca->ca_cert_ = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO_free(kb);
    BIO_free(cb);
    OPENSSL_cleanse(key_pem->data(), key_pem->size());
    if (ca->ca_key_ == nullptr || ca->ca_cert_ == nullptr) {
      return MakeError(ErrorCode::kDataLoss, "state-dir: ca.key or ca.crt is not valid PEM");
    }
    if (X509_check_private_key(ca->ca_cert_, ca->ca_key_) != 1) {
      return MakeError(ErrorCode::kDataLoss, "state-dir: ca.key does not match ca.crt");
    }
    ::chmod(key_path.c_str(), 0600);
    ca->loaded_existing_ = true;
  } else {
    ca->ca_key_ = NewP256Key();
    if (ca->ca_key_ == nullptr) return SslError("key generation failed");
    ca->ca_cert_ = MakeCaCert(ca->ca_key_);
    if (ca->ca_cert_ == nullptr) return SslError("CA certificate creation failed");
    std::string key_pem = ToPem(ca->ca_key_);
    auto st = WriteFileAtomic(key_path, key_pem, 0600);
    OPENSSL_cleanse(key_pem.data(), key_pem.size());
    if (!st) return st.error();
    st = WriteFileAtomic(ca->cert_path_, ToPem(ca->ca_cert_), 0644);
    if (!st) return st.error();
  }
  ca->leaf_key_ = NewP256Key();
  if (ca->leaf_key_ == nullptr) return SslError("leaf key generation failed");
  return ca;
}

CertificateAuthority::~CertificateAuthority() {
  EVP_PKEY_free(ca_key_);
  EVP_PKEY_free(leaf_key_);
  X509_free(ca_cert_);
}

size_t CertificateAuthority::cache_size() const {
  std::lock_guard lock(mu_);
  return cache_.size();
}

Result<std::shared_ptr<boost::asio::ssl::context>> CertificateAuthority::ServerContextFor(std::string_view raw) {
  const std::string host = NormalizeHost(raw);
  if (host.empty()) return MakeError(ErrorCode::kInvalidArgument, "host: empty");
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(host);
    if (it != cache_.end()) {
      entry = it->second;
      lru_.splice(lru_.begin(), lru_, entry->lru_pos);
    } else {
      entry = std::make_shared<Entry>();
      lru_.push_front(host);
      entry->lru_pos = lru_.begin();
      cache_.emplace(host, entry);
      while (cache_.size() > capacity_) {
        cache_.erase(lru_.back());
        lru_.pop_back();
      }
    }
  }
  std::lock_guard gen(entry->mu);  // single flight per host
  const auto now = std::chrono::steady_clock::now();
  if (entry->ctx && now - entry->made < kLeafRefresh) return entry->ctx;
  auto ctx = Generate(host);
  if (!ctx) return ctx.error();
  entry->ctx = *ctx;
  entry->made = now;
  return entry->ctx;
}

Result<std::shared_ptr<boost::asio::ssl::context>> CertificateAuthority::Generate(const std::string& host) {
  X509* cert = X509_new();
  X509_NAME* name = X509_NAME_new();
  const std::string san = (IsIpLiteral(host) ? "IP:" : "DNS:") + host;
  const std::string cn = host.substr(0, 64);
  bool ok = cert && name && X509_set_version(cert, 2) && SetRandomSerial(cert) &&
            X509_gmtime_adj(X509_getm_notBefore(cert), -3600) &&
            X509_gmtime_adj(X509_getm_notAfter(cert),
                            std::chrono::duration_cast<std::chrono::seconds>(kLeafLifetime).count()) &&
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()),
                                       -1, -1, 0) &&
            X509_set_subject_name(cert, name) && X509_set_issuer_name(cert, X509_get_subject_name(ca_cert_)) &&
            X509_set_pubkey(cert, leaf_key_) && AddX509Extension(cert, ca_cert_, NID_basic_constraints, "critical,CA:FALSE") &&
            AddX509Extension(cert, ca_cert_, NID_key_usage, "critical,digitalSignature") &&
            AddX509Extension(cert, ca_cert_, NID_ext_key_usage, "serverAuth") &&
            AddX509Extension(cert, ca_cert_, NID_authority_key_identifier, "keyid:always") &&
            AddX509Extension(cert, ca_cert_, NID_subject_alt_name, san.c_str()) && X509_sign(cert, ca_key_, EVP_sha256()) > 0;
  X509_NAME_free(name);
  if (!ok) {
    X509_free(cert);
    return SslError("leaf certificate creation failed");
  }
  auto ctx = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // No SSL_MODE_RELEASE_BUFFERS: it frees and re-allocates (zeroed) record
  // buffers on every read and write. TlsStream releases them instead once a
  // connection has been idle for kIdleBufferGrace. One read(2) per record
  // (not header + body): TlsStream drains OpenSSL before waiting on the socket.
  SSL_CTX_set_read_ahead(native, 1);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(native, 0);
  // Only HTTP/1.1 is spoken to the sandbox.
  SSL_CTX_set_alpn_select_cb(
      native,
      [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
         void*) -> int {
        static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        unsigned char* sel = nullptr;
        if (SSL_select_next_proto(&sel, outlen, kHttp11, sizeof(kHttp11), in, inlen) == OPENSSL_NPN_NEGOTIATED) {
          *out = sel;
          return SSL_TLSEXT_ERR_OK;
        }
        return SSL_TLSEXT_ERR_NOACK;
      },
      nullptr);
  ok = SSL_CTX_use_certificate(native, cert) == 1 && SSL_CTX_use_PrivateKey(native, leaf_key_) == 1 &&
       SSL_CTX_check_private_key(native) == 1;
  X509_free(cert);
  if (!ok) return SslError("leaf TLS context setup failed");
  leaves_generated_.fetch_add(1);
  return ctx;
}

}  // namespace osb::secretsproxy
