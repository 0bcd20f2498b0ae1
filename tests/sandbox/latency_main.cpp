// sandbox_latency: measures Create -> first Exec ("true") -> Destroy on this
// machine. Not a test (no thresholds); run as root:
//   build/tests/sandbox/sandbox_latency [count=20] [concurrent=0] [forks=0] [image.tar]
// forks > 0: also a sandbox with 100 MiB of files is checkpointed
// (CaptureState) and `forks` sandboxes are made from it: Create ->
// RestoreState -> first Exec, the runtime's part of a warm fork.
// With an image tarball (OCI layout or docker save; also accepted in
// place of `forks`), it is imported into a scratch store first and every
// sandbox is created from it (overlay root, 1 GiB disk); the import itself
// is not timed.
// Runs in its own network namespace like the integration tests.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "images/image_store.h"
#include "sandbox/runtime.h"

using namespace osb::sandbox;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int count = argc > 1 ? std::atoi(argv[1]) : 20;
  int concurrent = argc > 2 ? std::atoi(argv[2]) : 0;
  // argv[3]: a number of forks, or an image tarball; argv[4]: an image tarball.
  auto numeric = [](const char* a) { return *a != '\0' && std::strspn(a, "0123456789") == std::strlen(a); };
  int forks = argc > 3 && numeric(argv[3]) ? std::atoi(argv[3]) : 0;
  const char* image = argc > 4 ? argv[4] : (argc > 3 && !numeric(argv[3]) ? argv[3] : nullptr);
  if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "needs root\n");
    return 2;
  }
  RuntimeConfig cfg;
  cfg.namePrefix = "osbl";
  cfg.runDir = "/run/osbl";
  cfg.initBinary = OSB_SANDBOX_INIT;
  std::string imageRootfs;
  osb::images::RunConfig run;
  const std::string scratch = "/var/tmp/osb-latency-images";
  if (image != nullptr) {
    mkdir(scratch.c_str(), 0700);
    cfg.diskDir = scratch + "/disks";
    osb::images::ImageStore store(scratch + "/store");
    auto img = store.Import(image);
    if (!img) return std::fprintf(stderr, "import: %s\n", img.error().message.c_str()), 1;
    auto rc = osb::images::ResolveRunConfig(*img);
    if (!rc) return std::fprintf(stderr, "image config: %s\n", rc.error().message.c_str()), 1;
    imageRootfs = img->rootfs;
    run = *rc;
  }
  auto rt = SandboxRuntime::Create(cfg);
  if (!rt) return std::fprintf(stderr, "%s\n", rt.error().message.c_str()), 1;
  auto one = [&](const std::string& id) -> double {
    SandboxSpec spec;
    spec.id = id;
    spec.network = {3128, 3129, 3130, 5353};
    if (!imageRootfs.empty()) {
      spec.imageRootfs = imageRootfs;
      spec.runAsUid = run.uid;
      spec.runAsGid = run.gid;
      spec.workingDir = run.workingDir;
      for (const auto& [k, v] : run.env) spec.env.emplace(k, v);
    }
    auto t0 = Clock::now();
    auto info = (*rt)->Create(spec);
    if (!info) return std::fprintf(stderr, "create: %s\n", info.error().message.c_str()), -1;
    ExecRequest req;
    req.cmd = "true";
    auto r = (*rt)->Exec(id, req);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!r || r->exitCode != 0) std::fprintf(stderr, "exec failed\n");
    return ms;
  };
  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    std::string id = "lat-" + std::to_string(i);
    ms.push_back(one(id));
    (void)(*rt)->Destroy(id);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%s", imageRootfs.empty() ? "base: " : "image: ");
  std::printf("create->first exec, %d sequential: p50 %.1f ms  p99 %.1f ms  max %.1f ms\n", count,
              ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 99 / 100)], ms.back());
  if (forks > 0) {
    SandboxSpec src;
    src.id = "lat-src";
    src.network = {3128, 3129, 3130, 5353};
    if (auto info = (*rt)->Create(src); !info) return std::fprintf(stderr, "create: %s\n", info.error().message.c_str()), 1;
    ExecRequest fill;
    fill.cmd = "/bin/sh";
    fill.args = {"-c", "mkdir /home/sandbox/data && for i in $(seq 100); do head -c 1048576 /dev/urandom > /home/sandbox/data/f$i; done"};
    fill.timeoutSec = 300;
    if (auto r = (*rt)->Exec(src.id, fill); !r || r->exitCode != 0) return std::fprintf(stderr, "fill failed\n"), 1;
    char path[] = "/tmp/osb-latency-ckpt-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    auto t0 = Clock::now();
    auto saved = (*rt)->CaptureState(src.id, fd);
    double saveMs = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!saved) return std::fprintf(stderr, "capture: %s\n", saved.error().message.c_str()), 1;
    std::vector<double> fms;
    for (int i = 0; i < forks; ++i) {
      const std::string id = "lat-fork-" + std::to_string(i);
      SandboxSpec spec;
      spec.id = id;
      spec.network = {3128, 3129, 3130, 5353};
      lseek(fd, 0, SEEK_SET);
      auto f0 = Clock::now();
      auto info = (*rt)->Create(spec);
      auto restored = info ? (*rt)->RestoreState(id, fd) : osb::Result<StateStats>(info.error());
      ExecRequest req;
      req.cmd = "true";
      auto r = (*rt)->Exec(id, req);
      fms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - f0).count());
      if (!restored || !r || r->exitCode != 0) std::fprintf(stderr, "fork %d failed\n", i);
      (void)(*rt)->Destroy(id);
    }
    close(fd);
    (void)(*rt)->Destroy(src.id);
    std::sort(fms.begin(), fms.end());
    std::printf("checkpoint of 100 MiB: save %.0f ms (%lu bytes of data); %d forks, create+restore->first exec: p50 %.0f ms"
                "  p99 %.0f ms\n",
                saveMs, static_cast<unsigned long>(saved->dataBytes), forks, fms[fms.size() / 2], fms.back());
  }
  if (concurrent > 0) {
    std::vector<double> cms(static_cast<size_t>(concurrent));
    auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < concurrent; ++i)
      threads.emplace_back([&, i] { cms[static_cast<size_t>(i)] = one("conc-" + std::to_string(i)); });
    for (auto& t : threads) t.join();
    double wall = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    std::sort(cms.begin(), cms.end());
    std::printf("%d concurrent creates: all running after %.0f ms; per-sandbox p50 %.0f ms p99 %.0f ms; List()=%zu\n",
                concurrent, wall, cms[cms.size() / 2], cms.back(), (*rt)->List().size());
  }
  return 0;  // the runtime's destructor destroys the concurrent ones
}
