#include "sandbox/dns_message.h"

#include <gtest/gtest.h>

namespace osb::sandbox::dns {
namespace {

std::vector<uint8_t> MakeQuery(const std::string& name, uint16_t qtype, uint16_t id = 0x1234) {
  std::vector<uint8_t> q = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<uint8_t>(dot - start));
    q.insert(q.end(), name.begin() + start, name.begin() + dot);
    start = dot + 1;
  }
  q.push_back(0);
  q.push_back(static_cast<uint8_t>(qtype >> 8));
  q.push_back(static_cast<uint8_t>(qtype));
  q.push_back(0);
  q.push_back(1);
  return q;
}

TEST(DnsMessageTest, ParsesAStandardQueryLowercased) {
  auto r = ParseQuery(MakeQuery("API.Example.com", kTypeA));
  ASSERT_TRUE(r.query);
  EXPECT_EQ(r.query->name, "api.example.com");
  EXPECT_EQ(r.query->qtype, kTypeA);
  EXPECT_EQ(r.query->id, 0x1234);
  EXPECT_TRUE(r.query->recursionDesired);
  EXPECT_TRUE(r.query->nameIsPlain);
}

TEST(DnsMessageTest, BuildsAnARecordAnswer) {
  auto r = ParseQuery(MakeQuery("a.b", kTypeA));
  ASSERT_TRUE(r.query);
  uint32_t ip = 0x0500c80a;  // 10.200.0.5 in network order on little-endian
  auto resp = BuildResponse(*r.query, Rcode::kNoError, ip, 7);
  ASSERT_EQ(resp.size(), 12 + r.query->question.size() + 16);
  EXPECT_EQ(resp[3] & 0xf, 0);
  EXPECT_EQ(resp[7], 1);  // ANCOUNT
  EXPECT_EQ(resp[resp.size() - 4], 10);
  EXPECT_EQ(resp[resp.size() - 3], 200);
  auto nx = BuildResponse(*r.query, Rcode::kNxDomain, std::nullopt);
  EXPECT_EQ(nx[3] & 0xf, 3);
  EXPECT_EQ(nx[7], 0);
}

TEST(DnsMessageTest, RejectsMalformedQueries) {
  auto good = MakeQuery("a.example", kTypeA);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    std::vector<uint8_t> p(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut));
    EXPECT_FALSE(ParseQuery(p).query) << cut;
  }
  auto twoQuestions = good;
  twoQuestions[5] = 2;
  EXPECT_FALSE(ParseQuery(twoQuestions).query);
  auto response = good;
  response[2] |= 0x80;
  EXPECT_FALSE(ParseQuery(response).query);
  auto pointer = good;
  pointer[12] = 0xC0;
  EXPECT_FALSE(ParseQuery(pointer).query);
  auto opcode = good;
  opcode[2] |= 0x10;
  auto r = ParseQuery(opcode);
  EXPECT_FALSE(r.query);
  EXPECT_EQ(r.error, Rcode::kNotImp);
}

TEST(DnsMessageTest, FlagsNamesWithDotsInsideLabels) {
  std::vector<uint8_t> q = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'a', '.', 'b', 0, 0, 1, 0, 1};
  auto r = ParseQuery(q);
  ASSERT_TRUE(r.query);
  EXPECT_FALSE(r.query->nameIsPlain);
}

}  // namespace
}  // namespace osb::sandbox::dns
