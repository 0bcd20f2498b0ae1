#include "sandbox/init_protocol.h"

#include <gtest/gtest.h>

namespace osb::sandbox {
namespace {

TEST(InitProtocolTest, SetupRoundTrips) {
  SetupMessage m;
  m.rootfs.stagingDir = "/run/osb/x/root";
  m.rootfs.tmpfsBytes = 1 << 20;
  m.rootfs.uid = 1000;
  m.rootfs.gid = 1001;
  m.rootfs.files = {{"/etc/hosts", std::string("a\0b", 3), 0600}};
  m.rootfs.hiddenPaths = {"/var/lib/osb"};
  m.hostname = "x";
  m.controlSocketPath = "/run/osb/x/ctl.sock";
  m.baseEnv = {{"A", "1"}, {"EMPTY", ""}};
  auto d = DecodeSetup(EncodeSetup(m));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->rootfs.files[0].content, std::string("a\0b", 3));
  EXPECT_EQ(d->rootfs.files[0].mode, 0600u);
  EXPECT_EQ(d->rootfs.gid, 1001u);
  EXPECT_EQ(d->rootfs.hiddenPaths, m.rootfs.hiddenPaths);
  EXPECT_EQ(d->baseEnv, m.baseEnv);
  EXPECT_EQ(d->controlSocketPath, m.controlSocketPath);
}

TEST(InitProtocolTest, ExecRoundTripsAndTruncationsAreRejected) {
  ExecMessage m{"python3", {"-c", "print(1)", ""}, {{"K", "v"}}, "/tmp"};
  const auto wire = EncodeExec(m);
  auto d = DecodeExec(wire);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->args, m.args);
  EXPECT_EQ(d->env, m.env);
  EXPECT_EQ(d->cwd, "/tmp");
  for (size_t cut = 0; cut < wire.size(); ++cut) EXPECT_FALSE(DecodeExec(wire.substr(0, cut)).ok()) << cut;
  EXPECT_FALSE(DecodeSetup(wire).ok());
}

}  // namespace
}  // namespace osb::sandbox
