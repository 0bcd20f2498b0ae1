#include "secretsproxy/certificate_authority.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace osb::secretsproxy {
namespace {
namespace fs = std::filesystem;

fs::path TempDir() {
  char tmpl[] = "/tmp/osb_ca_test_XXXXXX";
  return fs::path(mkdtemp(tmpl));
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Verifies the leaf of ctx chains to ca.crt and is valid for host.
bool LeafValidFor(boost::asio::ssl::context& ctx, const fs::path& ca_path, const std::string& host) {
  X509* leaf = SSL_CTX_get0_certificate(ctx.native_handle());
  X509_STORE* store = X509_STORE_new();
  X509_STORE_load_file(store, ca_path.c_str());
  X509_STORE_CTX* vctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(vctx, store, leaf, nullptr);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(vctx);
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
  if (host.find_first_not_of("0123456789.:") == std::string::npos) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
  const bool ok = X509_verify_cert(vctx) == 1;
  X509_STORE_CTX_free(vctx);
  X509_STORE_free(store);
  return ok;
}

TEST(CertificateAuthority, CreatedOnceAndReusedAfterRestart) {
  const fs::path dir = TempDir();
  std::string first_cert;
  {
    auto ca = CertificateAuthority::LoadOrCreate(dir);
    ASSERT_TRUE(ca.ok()) << ca.error().message;
    EXPECT_FALSE((*ca)->loaded_existing());
    first_cert = Slurp((*ca)->cert_path());
  }
  struct stat st {};
  ASSERT_EQ(stat((dir / "ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = CertificateAuthority::LoadOrCreate(dir);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->loaded_existing());
  EXPECT_EQ(Slurp((*again)->cert_path()), first_cert);
  // The CA is an ECDSA P-256 CA.
  FILE* f = fopen((dir / "ca.crt").c_str(), "r");
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  fclose(f);
  ASSERT_NE(cert, nullptr);
  EVP_PKEY* key = X509_get0_pubkey(cert);
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  EXPECT_EQ(X509_check_ca(cert), 1);
  X509_free(cert);
  // A leaf made after restart still chains to the same CA file.
  auto ctx = (*again)->ServerContextFor("api.example.com");
  ASSERT_TRUE(ctx.ok());
  EXPECT_TRUE(LeafValidFor(**ctx, dir / "ca.crt", "api.example.com"));
  fs::remove_all(dir);
}

TEST(CertificateAuthority, CorruptKeyIsAClearError) {
  const fs::path dir = TempDir();
  { ASSERT_TRUE(CertificateAuthority::LoadOrCreate(dir).ok()); }
  std::ofstream(dir / "ca.key") << "garbage";
  auto ca = CertificateAuthority::LoadOrCreate(dir);
  ASSERT_FALSE(ca.ok());
  EXPECT_NE(ca.error().message.find("ca.key"), std::string::npos);
  fs::remove_all(dir);
}

TEST(CertificateAuthority, LeafSanMatchesHostOnly) {
  const fs::path dir = TempDir();
  auto ca = CertificateAuthority::LoadOrCreate(dir);
  ASSERT_TRUE(ca.ok());
  auto dns = (*ca)->ServerContextFor("API.Example.com.");
  ASSERT_TRUE(dns.ok());
  EXPECT_TRUE(LeafValidFor(**dns, (*ca)->cert_path(), "api.example.com"));
  EXPECT_FALSE(LeafValidFor(**dns, (*ca)->cert_path(), "other.example.com"));
  auto ipctx = (*ca)->ServerContextFor("10.1.2.3");
  ASSERT_TRUE(ipctx.ok());
  EXPECT_TRUE(LeafValidFor(**ipctx, (*ca)->cert_path(), "10.1.2.3"));
  EXPECT_FALSE(LeafValidFor(**ipctx, (*ca)->cert_path(), "10.1.2.4"));
  fs::remove_all(dir);
}

TEST(CertificateAuthority, CacheHitsAndBoundedLru) {
  const fs::path dir = TempDir();
  auto ca = CertificateAuthority::LoadOrCreate(dir, 2);
  ASSERT_TRUE(ca.ok());
  auto& a = **ca;
  auto c1 = a.ServerContextFor("a.test");
  auto c2 = a.ServerContextFor("a.test");
  ASSERT_TRUE(c1.ok() && c2.ok());
  EXPECT_EQ(c1->get(), c2->get());
  EXPECT_EQ(a.leaves_generated(), 1u);
  ASSERT_TRUE(a.ServerContextFor("b.test").ok());
  ASSERT_TRUE(a.ServerContextFor("c.test").ok());  // evicts a.test
  EXPECT_EQ(a.cache_size(), 2u);
  ASSERT_TRUE(a.ServerContextFor("a.test").ok());
  EXPECT_EQ(a.leaves_generated(), 4u);
  fs::remove_all(dir);
}

TEST(CertificateAuthority, SingleFlightPerHost) {
  const fs::path dir = TempDir();
  auto ca = CertificateAuthority::LoadOrCreate(dir);
  ASSERT_TRUE(ca.ok());
  std::vector<std::thread> threads;
  std::vector<boost::asio::ssl::context*> got(16);
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      auto c = (*ca)->ServerContextFor("same.test");
      got[static_cast<size_t>(i)] = c.ok() ? c->get() : nullptr;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ((*ca)->leaves_generated(), 1u);
  for (auto* g : got) EXPECT_EQ(g, got[0]);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace osb::secretsproxy
