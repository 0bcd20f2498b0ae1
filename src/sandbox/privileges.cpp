#include "sandbox/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace osb::sandbox {
namespace {

Error Fail(const char* what) {
  return MakeError(ErrorCode::kInternal, std::string("privileges: ") + what + ": " + std::strerror(errno));
}

int LastCap() {
  int last = CAP_LAST_CAP;
  if (FILE* f = std::fopen("/proc/sys/kernel/cap_last_cap", "r")) {
    if (std::fscanf(f, "%d", &last) != 1) last = CAP_LAST_CAP;
    std::fclose(f);
  }
  return last < 63 ? last : 63;
}

Status SetCaps(uint64_t keep) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(keep);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(keep >> 32);
  if (syscall(SYS_capset, &hdr, data) != 0) return Fail("capset");
  return {};
}

Status DropBounding(uint64_t keep, int lastCap) {
  for (int c = 0; c <= lastCap; ++c) {
    if (keep & (1ull << c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) return Fail("drop bounding capability");
  }
  return {};
}

}  // namespace

Status DropToUser(uid_t uid, gid_t gid) {
  const int last = LastCap();
  if (auto s = DropBounding(0, last); !s) return s;  // needs CAP_SETPCAP: before setuid
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return Fail("clear ambient");
  if (setgroups(0, nullptr) != 0) return Fail("setgroups");
  if (setresgid(gid, gid, gid) != 0) return Fail("setresgid");
  if (setresuid(uid, uid, uid) != 0) return Fail("setresuid");
  // Leaving uid 0 already cleared permitted/effective; make it explicit.
  if (auto s = SetCaps(0); !s) return s;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Fail("no_new_privs");
  if (getuid() != uid || geteuid() != uid || getgid() != gid) return Fail("uid check");
  return {};
}

Status RestrictInitCapabilities() {
  const uint64_t keep = (1ull << CAP_SETUID) | (1ull << CAP_SETGID) | (1ull << CAP_SETPCAP) | (1ull << CAP_KILL);
  if (auto s = DropBounding(keep, LastCap()); !s) return s;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return Fail("clear ambient");
  return SetCaps(keep);
}

}  // namespace osb::sandbox
