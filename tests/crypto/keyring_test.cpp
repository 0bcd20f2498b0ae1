#include "crypto/keyring.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "crypto/random.h"

namespace osb::crypto {
namespace {

const std::string kKeyA(64, 'a');
const std::string kKeyB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kKeyC = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

Keyring Ring(const std::string& primary,
             const std::vector<std::pair<std::string, std::string>>& prev = {}) {
  auto r = Keyring::FromHex(primary, prev);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return std::move(r).value();
}

// Asserts no configured key (hex, either case) appears in an error message.
void ExpectNoKeyMaterial(const std::string& message) {
  for (const auto& key : {kKeyA, kKeyB, kKeyC}) {
    EXPECT_EQ(message.find(key), std::string::npos) << message;
    EXPECT_EQ(message.find(key.substr(0, 16)), std::string::npos) << message;
  }
}

TEST(Keyring, RoundTripsEmptyOneByteAndLargeValues) {
  const Keyring ring = Ring(kKeyA);
  std::string big(64 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131);
  for (const std::string& plain : {std::string(), std::string("x"), big}) {
    auto ct = ring.Encrypt(plain, "org/group/NAME");
    ASSERT_TRUE(ct.ok());
    EXPECT_EQ(ct->size(), plain.size() + kCiphertextOverhead);
    auto back = ring.Decrypt(*ct, "org/group/NAME");
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(*back, plain);
  }
}

TEST(Keyring, CiphertextDoesNotContainPlaintext) {
  const Keyring ring = Ring(kKeyA);
  const std::string plain = "sk-live-THIS-IS-THE-REAL-VALUE";
  auto ct = ring.Encrypt(plain, "aad");
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(ct->find(plain), std::string::npos);
  EXPECT_EQ(ct->find("REAL-VALUE"), std::string::npos);
}

TEST(Keyring, NoncesAreFreshForEveryEncryption) {
  const Keyring ring = Ring(kKeyA);
  std::set<std::string> nonces;
  std::set<std::string> ciphertexts;
  constexpr int kCount = 20000;
  for (int i = 0; i < kCount; ++i) {
    auto ct = ring.Encrypt("same plaintext", "same aad");
    ASSERT_TRUE(ct.ok());
    nonces.insert(ct->substr(1 + kKeyIdSize, kNonceSize));
    ciphertexts.insert(*ct);
  }
  EXPECT_EQ(nonces.size(), static_cast<size_t>(kCount));
  EXPECT_EQ(ciphertexts.size(), static_cast<size_t>(kCount));
}

TEST(Keyring, WrongAssociatedDataFails) {
  const Keyring ring = Ring(kKeyA);
  auto ct = ring.Encrypt("value", "org1/group1/API_KEY");
  ASSERT_TRUE(ct.ok());
  for (const char* other : {"org1/group1/API_KEY2", "org2/group1/API_KEY", "", "org1/group1/API_KE"}) {
    auto r = ring.Decrypt(*ct, other);
    ASSERT_FALSE(r.ok()) << other;
    EXPECT_EQ(r.error().code, ErrorCode::kDataLoss);
    EXPECT_NE(r.error().message.find("authentication"), std::string::npos);
  }
}

TEST(Keyring, EveryFlippedBitIsDetected) {
  const Keyring ring = Ring(kKeyA);
  auto ct = ring.Encrypt("top secret value", "aad");
  ASSERT_TRUE(ct.ok());
  for (size_t byte = 0; byte < ct->size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = *ct;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      auto r = ring.Decrypt(bad, "aad");
      ASSERT_FALSE(r.ok()) << "byte " << byte << " bit " << bit;
      ExpectNoKeyMaterial(r.error().message);
      EXPECT_EQ(r.error().message.find("top secret"), std::string::npos);
    }
  }
}

TEST(Keyring, TruncatedAndEmptyCiphertextsFail) {
  const Keyring ring = Ring(kKeyA);
  auto ct = ring.Encrypt("hello", "aad");
  ASSERT_TRUE(ct.ok());
  for (size_t len = 0; len < ct->size(); ++len) {
    auto r = ring.Decrypt(ct->substr(0, len), "aad");
    ASSERT_FALSE(r.ok()) << len;
    EXPECT_EQ(r.error().code, ErrorCode::kDataLoss);
  }
  auto empty = ring.Decrypt("", "aad");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("truncated"), std::string::npos);
}

TEST(Keyring, RejectsBadKeys) {
  struct Case { std::string hex; std::string expect; };
  const std::vector<Case> cases = {
      {"", "got 0 characters"},
      {kKeyA.substr(0, 63), "got 63 characters"},
      {kKeyA + "aa", "got 66 characters"},
      {std::string(63, 'a') + "g", "not valid hex"},
      {std::string(62, 'a') + "zz", "not valid hex"},
  };
  for (const auto& c : cases) {
    auto r = Keyring::FromHex(c.hex);
    ASSERT_FALSE(r.ok()) << c.hex;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("OPENSANDBOX_SECRET_ENCRYPTION_KEY"), std::string::npos);
    if (!c.hex.empty()) {
      EXPECT_EQ(r.error().message.find(c.hex), std::string::npos);
    }
  }
}

TEST(Keyring, AcceptsUpperCaseAndSurroundingWhitespace) {
  std::string upper = kKeyB;
  for (char& ch : upper) ch = static_cast<char>(std::toupper(ch));
  auto a = Keyring::FromHex("  " + upper + "\n");
  auto b = Keyring::FromHex(kKeyB);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->primary_key_id(), b->primary_key_id());
}

TEST(Keyring, RejectsDuplicateKeysNamingBothSlots) {
  auto r = Keyring::FromHex(kKeyA, {{"OPENSANDBOX_SECRET_ENCRYPTION_KEY_V2", kKeyA}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("_V2"), std::string::npos);
  EXPECT_NE(r.error().message.find("already configured"), std::string::npos);
  ExpectNoKeyMaterial(r.error().message);
}

TEST(Keyring, KeyIdIsStableAndDoesNotRevealTheKey) {
  const Keyring a = Ring(kKeyA);
  const Keyring a2 = Ring(kKeyA, {{"OPENSANDBOX_SECRET_ENCRYPTION_KEY_V1", kKeyB}});
  EXPECT_EQ(a.primary_key_id(), a2.primary_key_id());
  EXPECT_EQ(a.primary_key_id().size(), 2 * kKeyIdSize);
  EXPECT_NE(a.primary_key_id(), Ring(kKeyB).primary_key_id());
  ExpectNoKeyMaterial(a.primary_key_id());
  auto ct = a.Encrypt("x", "");
  ASSERT_TRUE(ct.ok());
  auto id = Keyring::KeyIdOf(*ct);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, a.primary_key_id());
}

TEST(Keyring, UnknownKeyIdIsNamedInTheError) {
  const Keyring old_ring = Ring(kKeyA);
  const Keyring new_ring = Ring(kKeyB);
  auto ct = old_ring.Encrypt("value", "aad");
  ASSERT_TRUE(ct.ok());
  auto r = new_ring.Decrypt(*ct, "aad");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message.find(old_ring.primary_key_id()), std::string::npos) << r.error().message;
  ExpectNoKeyMaterial(r.error().message);
}

// The rotation story exactly as the docs tell it, through the environment.
TEST(Keyring, RotationThroughEnvironmentKeepsOldCiphertextsReadable) {
  std::map<std::string, std::string> env = {{kKeyEnv, kKeyA}};
  auto getenv = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto v1 = Keyring::FromEnvironment(getenv);
  ASSERT_TRUE(v1.ok()) << v1.error().message;
  auto ct_a = v1->Encrypt("first value", "row1");
  ASSERT_TRUE(ct_a.ok());

  // Rotate: A moves to _V3 (any slot), B becomes primary.
  env = {{kKeyEnv, kKeyB}, {std::string(kKeyEnv) + "_V3", kKeyA}};
  auto v2 = Keyring::FromEnvironment(getenv);
  ASSERT_TRUE(v2.ok()) << v2.error().message;
  EXPECT_EQ(*v2->Decrypt(*ct_a, "row1"), "first value");
  auto ct_b = v2->Encrypt("second value", "row2");
  ASSERT_TRUE(ct_b.ok());
  EXPECT_EQ(*Keyring::KeyIdOf(*ct_b), Keyring::FromHex(kKeyB)->primary_key_id());

  // Rotate again: C primary, B to _V1, A to _V7. Everything still decrypts.
  env = {{kKeyEnv, kKeyC}, {std::string(kKeyEnv) + "_V1", kKeyB}, {std::string(kKeyEnv) + "_V7", kKeyA}};
  auto v3 = Keyring::FromEnvironment(getenv);
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(*v3->Decrypt(*ct_a, "row1"), "first value");
  EXPECT_EQ(*v3->Decrypt(*ct_b, "row2"), "second value");
  ASSERT_EQ(v3->keys().size(), 3u);
  EXPECT_TRUE(v3->keys()[0].primary);

  // Retire A without re-encrypting: its ciphertext fails, naming A's id.
  env = {{kKeyEnv, kKeyC}, {std::string(kKeyEnv) + "_V1", kKeyB}};
  auto v4 = Keyring::FromEnvironment(getenv);
  ASSERT_TRUE(v4.ok());
  auto gone = v4->Decrypt(*ct_a, "row1");
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.error().message.find(v1->primary_key_id()), std::string::npos);
}

TEST(Keyring, EnvironmentErrors) {
  std::map<std::string, std::string> env;
  auto getenv = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto none = Keyring::FromEnvironment(getenv);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("osb keygen"), std::string::npos);

  env = {{kKeyEnv, kKeyA}, {kKeyFileEnv, "/nonexistent"}};
  auto both = Keyring::FromEnvironment(getenv);
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.error().message.find("only one"), std::string::npos);

  env = {{kKeyFileEnv, "/nonexistent/key"}};
  auto missing = Keyring::FromEnvironment(getenv);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/key"), std::string::npos);

  env = {{kKeyEnv, kKeyA}, {std::string(kKeyEnv) + "_V4", "nothex"}};
  auto bad_prev = Keyring::FromEnvironment(getenv);
  ASSERT_FALSE(bad_prev.ok());
  EXPECT_NE(bad_prev.error().message.find("_V4"), std::string::npos);
  EXPECT_EQ(bad_prev.error().message.find("nothex"), std::string::npos);
}

TEST(Keyring, KeyFileIsRead) {
  const auto path = std::filesystem::temp_directory_path() / ("osb-key-" + RandomHex(8));
  { std::ofstream(path) << kKeyC << "\n"; }
  std::map<std::string, std::string> env = {{kKeyFileEnv, path.string()}};
  auto ring = Keyring::FromEnvironment([&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  std::filesystem::remove(path);
  ASSERT_TRUE(ring.ok()) << ring.error().message;
  EXPECT_EQ(ring->primary_key_id(), Ring(kKeyC).primary_key_id());
}

TEST(Keyring, GeneratedKeysAreValidAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string hex = GenerateKeyHex();
    EXPECT_EQ(hex.size(), 64u);
    EXPECT_TRUE(Keyring::FromHex(hex).ok());
    seen.insert(hex);
  }
  EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace osb::crypto
