// The proxy's certificate authority.
//
// An ECDSA P-256 CA is generated on first start into <state_dir>/ca.key
// (PEM, mode 0600, created atomically) and <state_dir>/ca.crt, and reused on
// every later start. The sandbox trusts ca.crt (cert_path()).
// For each host the proxy impersonates it signs a short-lived leaf
// certificate (SAN = DNS name or IP address, EKU serverAuth, 24 h validity)
// with one in-memory P-256 leaf key, and builds a TLS server context around
// it. Contexts are cached in a bounded LRU; for one host a leaf is never
// generated twice concurrently (single flight: later callers wait for the
// first). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace boost::asio::ssl {
class context;
}

namespace osb::secretsproxy {

class CertificateAuthority {
 public:
  static Result<std::unique_ptr<CertificateAuthority>> LoadOrCreate(const std::filesystem::path& state_dir,
                                                                    size_t cache_capacity = 1024);
  ~CertificateAuthority();

  const std::filesystem::path& cert_path() const { return cert_path_; }
  // Whether LoadOrCreate found an existing CA (false = generated now).
  bool loaded_existing() const { return loaded_existing_; }

  // TLS server context presenting a leaf for `host` (normalized name or IP).
  Result<std::shared_ptr<boost::asio::ssl::context>> ServerContextFor(std::string_view host);

  uint64_t leaves_generated() const { return leaves_generated_.load(); }
  size_t cache_size() const;

 private:
  struct Entry;
  CertificateAuthority() = default;
  Result<std::shared_ptr<boost::asio::ssl::context>> Generate(const std::string& host);

  std::filesystem::path cert_path_;
  bool loaded_existing_ = false;
  EVP_PKEY* ca_key_ = nullptr;
  X509* ca_cert_ = nullptr;
  EVP_PKEY* leaf_key_ = nullptr;
  size_t capacity_ = 1024;

  mutable std::mutex mu_;
  std::list<std::string> lru_;  // front = most recent
  std::unordered_map<std::string, std::shared_ptr<Entry>> cache_;
  std::atomic<uint64_t> leaves_generated_{0};
};

}  // namespace osb::secretsproxy
