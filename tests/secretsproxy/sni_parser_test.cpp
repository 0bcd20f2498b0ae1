// The SNI parser against real ClientHellos produced by OpenSSL, cut at every
// length, plus hostile inputs.
#include "secretsproxy/sni_parser.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

namespace osb::secretsproxy {
namespace {

std::string ClientHello(const char* sni) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  if (sni) SSL_set_tlsext_host_name(ssl, sni);
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  std::string out(data, static_cast<size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

TEST(SniParser, RealClientHelloAtEveryLength) {
  const std::string hello = ClientHello("API.Example.com");
  for (size_t n = 0; n < hello.size(); ++n) {
    std::string host;
    EXPECT_EQ(ParseClientHelloSni(std::string_view(hello).substr(0, n), &host), SniResult::kNeedMore) << n;
  }
  std::string host;
  ASSERT_EQ(ParseClientHelloSni(hello, &host), SniResult::kFound);
  EXPECT_EQ(host, "api.example.com");
}

TEST(SniParser, HelloFragmentedOverRecords) {
  const std::string hello = ClientHello("frag.test");
  // Re-frame the handshake message into 3 records.
  const std::string hs = hello.substr(5);
  std::string wire;
  for (size_t i = 0; i < hs.size(); i += 100) {
    const std::string part = hs.substr(i, 100);
    wire += std::string("\x16\x03\x01", 3);
    wire += static_cast<char>(part.size() >> 8);
    wire += static_cast<char>(part.size() & 0xff);
    wire += part;
  }
  std::string host;
  ASSERT_EQ(ParseClientHelloSni(wire, &host), SniResult::kFound);
  EXPECT_EQ(host, "frag.test");
}

TEST(SniParser, NoSniAndGarbage) {
  std::string host;
  EXPECT_EQ(ParseClientHelloSni(ClientHello(nullptr), &host), SniResult::kNoSni);
  EXPECT_EQ(ParseClientHelloSni("GET / HTTP/1.1\r\n\r\n", &host), SniResult::kInvalid);
  EXPECT_EQ(ParseClientHelloSni(std::string("\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00", 10), &host),
            SniResult::kInvalid);  // a ServerHello
  // Lengths that point past the end are invalid, never read out of bounds.
  std::string hello = ClientHello("x.test");
  for (size_t i = 5; i < hello.size(); ++i) {
    std::string mutated = hello;
    mutated[i] = static_cast<char>(0xff);
    (void)ParseClientHelloSni(mutated, &host);
  }
}

TEST(SniParser, RejectsHostileNames) {
  std::string host;
  EXPECT_EQ(ParseClientHelloSni(ClientHello("a.test\r\nX: y"), &host), SniResult::kInvalid);
}

}  // namespace
}  // namespace osb::secretsproxy
