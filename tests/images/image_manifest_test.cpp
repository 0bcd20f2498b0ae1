#include "images/image_manifest.h"

#include <gtest/gtest.h>

namespace osb::images {
namespace {

TEST(CleanArchivePath, RefusesTraversalAndAbsolute) {
  EXPECT_EQ(CleanArchivePath("./a//b/./c/"), "a/b/c");
  EXPECT_EQ(CleanArchivePath("."), "");
  EXPECT_FALSE(CleanArchivePath("../x"));
  EXPECT_FALSE(CleanArchivePath("a/../../x"));
  EXPECT_FALSE(CleanArchivePath("a/.."));
  EXPECT_FALSE(CleanArchivePath("/etc/passwd"));
  EXPECT_FALSE(CleanArchivePath(std::string("a\0b", 3)));
  EXPECT_FALSE(CleanArchivePath(std::string(5000, 'a')));
}

TEST(ValidateDigest, OnlyLowercaseSha256) {
  EXPECT_TRUE(ValidateDigest("sha256:" + std::string(64, 'a'), "d"));
  EXPECT_FALSE(ValidateDigest("sha256:" + std::string(64, 'A'), "d"));
  EXPECT_FALSE(ValidateDigest("sha512:" + std::string(128, 'a'), "d"));
  EXPECT_FALSE(ValidateDigest("sha256:../../etc/passwd", "d"));
  auto s = ValidateDigest("md5:abc", "layers[0].digest");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("layers[0].digest"), std::string::npos);
}

TEST(ParseOciIndex, PicksLinuxAmd64AndSkipsAttestations) {
  const std::string d1 = "sha256:" + std::string(64, '1'), d2 = "sha256:" + std::string(64, '2');
  const std::string idx = R"({"manifests":[
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + d1 + R"(","size":1,
     "platform":{"os":"unknown","architecture":"unknown"}},
    {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" + d2 + R"(","size":2,
     "platform":{"os":"linux","architecture":"amd64"}}]})";
  auto d = ParseOciIndex(idx, "index.json");
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->digest, d2);
  EXPECT_EQ(d->size, 2u);
}

TEST(ParseOciManifest, NamesTheBadField) {
  auto m = ParseOciManifest(R"({"config":{"digest":"sha256:00","size":1},"layers":[]})", "manifest");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("config.digest"), std::string::npos) << m.error().message;
  auto l = ParseOciManifest(R"({"config":{"digest":"sha256:)" + std::string(64, 'a') +
                                R"(","size":1},"layers":[{"mediaType":"x/y","digest":"sha256:)" +
                                std::string(64, 'b') + R"(","size":-1}]})",
                            "manifest");
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().message.find("layers[0].size"), std::string::npos) << l.error().message;
  EXPECT_FALSE(ParseOciManifest("[1,2", "manifest"));
}

TEST(ParseDockerManifest, ConfigNameIsTheDigest) {
  const std::string hex(64, 'c');
  auto m = ParseDockerManifest(R"([{"Config":")" + hex + R"(.json","Layers":["a/layer.tar"]}])");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->configDigest, "sha256:" + hex);
  auto oci = ParseDockerManifest(R"([{"Config":"blobs/sha256/)" + hex + R"(","Layers":[]}])");
  ASSERT_TRUE(oci);
  EXPECT_FALSE(ParseDockerManifest(R"([{"Config":"config.json","Layers":[]}])"));
  EXPECT_FALSE(ParseDockerManifest(R"({"Config":"x"})"));
}

TEST(ParseImageConfig, EnvWorkingDirUser) {
  auto c = ParseImageConfig(
      R"({"config":{"Env":["PATH=/bin","A=b=c"],"WorkingDir":"/w","User":"app:staff"},"rootfs":{"diff_ids":[]}})",
      "config");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->env, (std::vector<std::string>{"PATH=/bin", "A=b=c"}));
  EXPECT_EQ(c->workingDir, "/w");
  EXPECT_EQ(c->user, "app:staff");
  auto bad = ParseImageConfig(R"({"config":{"Env":["=x"]},"rootfs":{"diff_ids":[]}})", "config");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("config.Env"), std::string::npos);
  EXPECT_FALSE(ParseImageConfig(R"({"config":{"WorkingDir":"rel"},"rootfs":{"diff_ids":[]}})", "config"));
  EXPECT_FALSE(ParseImageConfig(R"({"config":{}})", "config"));
}

TEST(ResolveUser, NamesIdsAndGroups) {
  const std::string passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n";
  const std::string group = "root:x:0:\nstaff:x:50:\n";
  auto r = ResolveUser("", passwd, group);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->uid, 0u);
  r = ResolveUser("app", passwd, group);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->uid, 1000u);
  EXPECT_EQ(r->gid, 1001u);
  EXPECT_EQ(r->home, "/home/app");
  r = ResolveUser("app:staff", passwd, group);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->gid, 50u);
  r = ResolveUser("1000:7", passwd, group);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->uid, 1000u);
  EXPECT_EQ(r->gid, 7u);
  r = ResolveUser("4242", passwd, group);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->uid, 4242u);
  EXPECT_EQ(r->gid, 0u);
  EXPECT_FALSE(ResolveUser("nobody", passwd, group));
  EXPECT_FALSE(ResolveUser("app:nogroup", passwd, group));
  EXPECT_FALSE(ResolveUser("70000", passwd, group));
}

}  // namespace
}  // namespace osb::images
