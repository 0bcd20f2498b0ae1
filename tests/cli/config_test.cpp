#include "cli/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>

namespace osb::cli {
namespace {

namespace fs = std::filesystem;

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/osb-cli-config-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(ConfigPath, XdgWinsOverHome) {
  EXPECT_EQ(*ConfigFilePath(FakeEnv({{"XDG_CONFIG_HOME", "/x"}, {"HOME", "/h"}})),
            fs::path("/x/opensandbox/config"));
  EXPECT_EQ(*ConfigFilePath(FakeEnv({{"XDG_CONFIG_HOME", ""}, {"HOME", "/h"}})),
            fs::path("/h/.config/opensandbox/config"));
  EXPECT_FALSE(ConfigFilePath(FakeEnv({})).ok());
}

TEST(ResolveConfig, FlagBeatsEnvBeatsFileBeatsDefault) {
  FileConfig file{"http://file:1", "file-key"};
  auto env = FakeEnv({{"OPENSANDBOX_API_URL", "http://env:1"}, {"OPENSANDBOX_API_KEY", "env-key"}});

  auto r = ResolveConfig("http://flag:1", "flag-key", env, file, "F");
  EXPECT_EQ(r.api_url, "http://flag:1");
  EXPECT_EQ(r.api_key, "flag-key");
  EXPECT_EQ(r.api_key_source, "flag --api-key");

  r = ResolveConfig(std::nullopt, std::nullopt, env, file, "F");
  EXPECT_EQ(r.api_url, "http://env:1");
  EXPECT_EQ(r.api_key, "env-key");

  r = ResolveConfig(std::nullopt, std::nullopt, FakeEnv({}), file, "F");
  EXPECT_EQ(r.api_url, "http://file:1");
  EXPECT_EQ(r.api_key, "file-key");
  EXPECT_EQ(r.api_url_source, "file F");

  r = ResolveConfig(std::nullopt, std::nullopt, FakeEnv({}), FileConfig{}, "F");
  EXPECT_EQ(r.api_url, kDefaultApiUrl);
  EXPECT_EQ(r.api_key, "");
  EXPECT_EQ(r.api_key_source, "none");
}

TEST(ResolveConfig, FieldsResolveIndependentlyAndEmptyCountsAsUnset) {
  FileConfig file{std::nullopt, "file-key"};
  auto r = ResolveConfig("http://flag:1", "", FakeEnv({{"OPENSANDBOX_API_KEY", ""}}), file, "F");
  EXPECT_EQ(r.api_url, "http://flag:1");
  EXPECT_EQ(r.api_key, "file-key");
}

TEST_F(TempDir, WriteThenLoadRoundTripsWithMode0600) {
  fs::path path = dir_ / "nested" / "opensandbox" / "config";
  ASSERT_TRUE(WriteConfigFile(path, {"http://h:1", "k1"}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(path.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  std::string warning;
  auto loaded = LoadConfigFile(path, &warning);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded->api_url, "http://h:1");
  EXPECT_EQ(*loaded->api_key, "k1");
  EXPECT_FALSE(loaded->ca_file.has_value());
  EXPECT_TRUE(warning.empty());

  ASSERT_TRUE(WriteConfigFile(path, {"https://h:1", "k1", "/etc/ca.pem"}).ok());
  loaded = LoadConfigFile(path, nullptr);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded->ca_file, "/etc/ca.pem");

  // Replacing keeps the mode and leaves no temporary file behind.
  ASSERT_TRUE(WriteConfigFile(path, {"http://h:2", std::nullopt}).ok());
  loaded = LoadConfigFile(path, nullptr);
  EXPECT_EQ(*loaded->api_url, "http://h:2");
  EXPECT_FALSE(loaded->api_key.has_value());
  EXPECT_EQ(std::distance(fs::directory_iterator(path.parent_path()), fs::directory_iterator{}), 1);
}

TEST_F(TempDir, MissingFileIsEmptyAndBadFilesNameTheFileNotTheContent) {
  auto missing = LoadConfigFile(dir_ / "none", nullptr);
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->api_key.has_value());

  fs::path path = dir_ / "config";
  for (const char* text : {"{\"apiKey\": \"very-secret\",", "[\"very-secret\"]", "{\"apiKey\": 42}"}) {
    std::ofstream(path) << text;
    auto r = LoadConfigFile(path, nullptr);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().message.find(path.string()), std::string::npos);
    EXPECT_EQ(r.error().message.find("very-secret"), std::string::npos);
  }
}

TEST_F(TempDir, GroupReadableFileWarns) {
  fs::path path = dir_ / "config";
  std::ofstream(path) << "{}";
  ::chmod(path.c_str(), 0644);
  std::string warning;
  ASSERT_TRUE(LoadConfigFile(path, &warning).ok());
  EXPECT_NE(warning.find("chmod 600"), std::string::npos);
}

}  // namespace
}  // namespace osb::cli

namespace osb::cli {
namespace {

TEST(ResolveConfig, CaFileFlagBeatsEnvBeatsFileElseSystemStore) {
  FileConfig file;
  file.ca_file = "/file/ca.pem";
  auto env = FakeEnv({{"OSB_CA_FILE", "/env/ca.pem"}});
  auto r = ResolveConfig(std::nullopt, std::nullopt, env, file, "F", std::string("/flag/ca.pem"));
  EXPECT_EQ(r.ca_file, "/flag/ca.pem");
  EXPECT_EQ(r.ca_file_source, "flag --ca-file");
  r = ResolveConfig(std::nullopt, std::nullopt, env, file, "F");
  EXPECT_EQ(r.ca_file, "/env/ca.pem");
  r = ResolveConfig(std::nullopt, std::nullopt, FakeEnv({{"OSB_CA_FILE", ""}}), file, "F");
  EXPECT_EQ(r.ca_file, "/file/ca.pem");
  EXPECT_EQ(r.ca_file_source, "file F");
  r = ResolveConfig(std::nullopt, std::nullopt, FakeEnv({}), FileConfig{}, "F");
  EXPECT_EQ(r.ca_file, "");
  EXPECT_EQ(r.ca_file_source, "none");
}

}  // namespace
}  // namespace osb::cli
