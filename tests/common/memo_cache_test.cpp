// MemoCache derives again exactly when the source changed, and stays bounded.
#include "common/memo_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace osb {
namespace {

TEST(MemoCache, DerivesOncePerSourceAndAgainWhenItChanges) {
  MemoCache<std::string, std::string> cache(10);
  int made = 0;
  auto upper = [&](const std::string& s) {
    ++made;
    std::string out = s;
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
  };
  EXPECT_EQ(cache.Get("a", "running", upper), "RUNNING");
  EXPECT_EQ(cache.Get("a", "running", upper), "RUNNING");
  EXPECT_EQ(made, 1);
  EXPECT_EQ(cache.Get("a", "stopped", upper), "STOPPED");  // the row changed
  EXPECT_EQ(made, 2);
  EXPECT_EQ(cache.Get("b", "running", upper), "RUNNING");  // per key
  EXPECT_EQ(made, 3);
}

TEST(MemoCache, ForgetsEverythingPastItsBound) {
  MemoCache<int, int> cache(3);
  for (int i = 0; i < 3; ++i) cache.Get(std::to_string(i), i, [](int v) { return v * 2; });
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Get("x", 7, [](int v) { return v * 2; }), 14);
  EXPECT_EQ(cache.size(), 1u);
}

}  // namespace
}  // namespace osb
