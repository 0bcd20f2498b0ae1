// JsonBody keeps secrets short-lived: every string in a parsed body is
// wiped when it goes away, however deeply it is nested.
#include "api/json_body.h"

#include <gtest/gtest.h>

namespace osb::api {
namespace {

TEST(JsonBodyWipe, EveryStringValueIsEmptiedAtAnyDepth) {
  auto j = nlohmann::json::parse(
      R"({"value":"sk-live-1","allowedHosts":["a.test",{"deep":["sk-live-2"]}],"n":3,"ok":true})");
  WipeJsonStrings(j);
  EXPECT_EQ(j["value"], "");
  EXPECT_EQ(j["allowedHosts"][0], "");
  EXPECT_EQ(j["allowedHosts"][1]["deep"][0], "");
  EXPECT_EQ(j["n"], 3);  // non-strings untouched
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j.dump().find("sk-live"), std::string::npos);
}

TEST(JsonBodyWipe, DeepNestingDoesNotExhaustTheStack) {
  const size_t depth = 200000;
  std::string body(depth, '[');
  body += "\"x\"";
  body.append(depth, ']');
  auto j = nlohmann::json::parse(body, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  WipeJsonStrings(j);
  const nlohmann::json* v = &j;
  for (size_t i = 0; i < depth; ++i) v = &(*v)[0];
  EXPECT_EQ(*v, "");
}

TEST(JsonBodyWipe, ParsedBodiesStillReadNormally) {
  auto body = JsonBody::Parse(R"({"value":"v","allowedHosts":["h"]})", {"value", "allowedHosts"});
  ASSERT_TRUE(body.ok());
  auto moved = std::move(*body);  // moves keep working (the wipe runs once, on the owner)
  EXPECT_EQ(**moved.String("value"), "v");
  EXPECT_EQ((**moved.StringList("allowedHosts")), std::vector<std::string>{"h"});
  EXPECT_FALSE(JsonBody::Parse(R"({"value":"v","bogus":1})", {"value"}).ok());
}

}  // namespace
}  // namespace osb::api
