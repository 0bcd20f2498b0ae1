// The worker's image template step: a stored image turns a spec into an
// overlay sandbox with the image's Env (under the request's), WorkingDir and
// User; an unknown or malformed digest is refused naming template_digest.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <gtest/gtest.h>

#include "images/image_store.h"
#include "images/layer_applier.h"
#include "worker/worker_service.h"

namespace osb::worker {
namespace {

TEST(ApplyImageTemplate, StoredImageBecomesTheSandboxRoot) {
  char tmpl[] = "/tmp/osb-worker-image-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::ofstream(dir + "/spec.json") << R"({"busybox": true, "config": {"Env": ["PATH=/bin", "GREETING=image"],
    "WorkingDir": "/home/app", "User": "app"}})";
  ASSERT_EQ(system(("python3 " OSB_SOURCE_DIR "/tests/support/make_image.py " + dir + "/spec.json " + dir +
                    "/img.tar > /dev/null").c_str()),
            0);
  images::ImageStore store(dir + "/images");
  auto img = store.Import(dir + "/img.tar");
  ASSERT_TRUE(img) << img.error().message;

  sandbox::SandboxSpec spec;
  spec.env = {{"GREETING", "request"}};
  ASSERT_TRUE(ApplyImageTemplate(dir + "/images", img->configDigest, 256, spec));
  EXPECT_EQ(spec.imageRootfs, img->rootfs);
  EXPECT_EQ(spec.diskMB, 256u);
  EXPECT_EQ(spec.runAsUid, 1000);
  EXPECT_EQ(spec.runAsGid, 1000);
  EXPECT_EQ(spec.workingDir, "/home/app");
  EXPECT_EQ(spec.env["GREETING"], "request");
  EXPECT_EQ(spec.env["PATH"], "/bin");

  sandbox::SandboxSpec other;
  auto missing = ApplyImageTemplate(dir + "/images", "sha256:" + std::string(64, '0'), 256, other);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(missing.error().message.find("template_digest"), std::string::npos);
  auto bad = ApplyImageTemplate(dir + "/images", "sha256:../../etc", 256, other);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(other.imageRootfs.empty());

  int fd = open("/tmp", O_RDONLY | O_DIRECTORY);
  (void)images::RemoveTreeAt(fd, dir.substr(5));
  close(fd);
}

}  // namespace
}  // namespace osb::worker
