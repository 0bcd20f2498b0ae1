// TemplateFetcher: a worker gets an image it lacks from the control plane
// (here: a source over local files, the seam under the gRPC stream), imports
// it with full verification, and caches it. Concurrent creates of one digest
// fetch once; bytes that do not verify, or that are another image than the
// digest asked for, are refused and leave nothing in the store.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "worker/template_fetcher.h"

namespace osb::worker {
namespace {

std::string MakeImage(const std::string& dir, const std::string& name, const std::string& spec) {
  std::ofstream(dir + "/" + name + ".json") << spec;
  const std::string cmd = "python3 " OSB_SOURCE_DIR "/tests/support/make_image.py " + dir + "/" + name + ".json " +
                          dir + "/" + name + ".tar";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[128] = {};
  std::string digest = p && fgets(buf, sizeof buf, p) ? buf : "";
  if (p) pclose(p);
  while (!digest.empty() && digest.back() == '\n') digest.pop_back();
  return digest;
}

// Serves `path`'s bytes for any digest, counting calls.
TemplateSource FileSource(std::string path, std::atomic<int>* calls) {
  return [path, calls](const std::string&, int fd) -> Result<int64_t> {
    ++*calls;
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    if (write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size()))
      return MakeError(ErrorCode::kInternal, "write");
    return static_cast<int64_t>(data.size());
  };
}

class TemplateFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/osb-fetcher-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    digest_ = MakeImage(dir_, "good", R"({"busybox": true, "config": {"Env": ["X=1"]}})");
    ASSERT_EQ(digest_.size(), 71u);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  bool StoreHasNoImages() {
    const std::string sha = dir_ + "/images/sha256";
    return !std::filesystem::exists(sha) || std::filesystem::is_empty(sha);
  }
  std::string dir_, digest_;
};

TEST_F(TemplateFetcherTest, ConcurrentCreatesOfOneDigestFetchAndImportOnce) {
  std::atomic<int> calls{0};
  TemplateFetcher fetcher(dir_ + "/images", FileSource(dir_ + "/good.tar", &calls));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      if (fetcher.Ensure(digest_)) ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(images::ImageStore(dir_ + "/images").Find(digest_));
  // Cached: no further fetch.
  ASSERT_TRUE(fetcher.Ensure(digest_));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(std::filesystem::is_empty(dir_ + "/images/tmp"));
}

TEST_F(TemplateFetcherTest, BytesThatDoNotVerifyAreRefused) {
  // A control plane (or anyone on the way) sending a tampered layer.
  MakeImage(dir_, "tampered", R"({"busybox": true, "config": {"Env": ["X=1"]}, "corrupt": "layer"})");
  std::atomic<int> calls{0};
  TemplateFetcher fetcher(dir_ + "/images", FileSource(dir_ + "/tampered.tar", &calls));
  auto st = fetcher.Ensure(digest_);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("digest mismatch"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("template_digest"), std::string::npos) << st.error().message;
  EXPECT_TRUE(StoreHasNoImages());
}

TEST_F(TemplateFetcherTest, AnotherImageThanTheDigestAskedForIsRefused) {
  const std::string other = MakeImage(dir_, "other", R"({"busybox": true, "config": {"Env": ["X=2"]}})");
  ASSERT_NE(other, digest_);
  std::atomic<int> calls{0};
  TemplateFetcher fetcher(dir_ + "/images", FileSource(dir_ + "/other.tar", &calls));
  auto st = fetcher.Ensure(digest_);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("sent image " + other), std::string::npos) << st.error().message;
  EXPECT_TRUE(StoreHasNoImages());
}

TEST_F(TemplateFetcherTest, MalformedDigestsAndMissingSourceAreRefused) {
  TemplateFetcher fetcher(dir_ + "/images", nullptr);
  EXPECT_EQ(fetcher.Ensure("../../etc").error().code, ErrorCode::kInvalidArgument);
  auto st = fetcher.Ensure(digest_);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kFailedPrecondition);
}

}  // namespace
}  // namespace osb::worker
