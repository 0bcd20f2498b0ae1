// Fuzzes the layer applier: the input is one layer (tar, tar+gzip or
// tar+zstd) applied onto an empty root inside a private scratch dir.
// Properties: never crashes; whatever the bytes, nothing appears next to
// the root (the scratch dir holds only "root" afterwards), and a tight
// budget is never exceeded. The same bytes also go through ScanLayer (the
// control plane's check of an uploaded layer, which writes nothing): it
// never crashes and keeps within its budget.
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "images/layer_applier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::string scratch = [] {
    char tmpl[] = "/tmp/osb-layer-fuzz-XXXXXX";
    if (!mkdtemp(tmpl)) abort();
    return std::string(tmpl);
  }();
  int scratchFd = open(scratch.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (scratchFd < 0) abort();
  (void)osb::images::RemoveTreeAt(scratchFd, "root");
  if (mkdirat(scratchFd, "root", 0755) != 0) abort();
  int rootFd = openat(scratchFd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  osb::images::ApplyBudget budget{1 << 20, 256};
  (void)osb::images::ApplyLayerBytes(rootFd, data, size, "layer", budget);
  if (budget.bytesLeft > (1u << 20) || budget.entriesLeft > 256) abort();
  close(rootFd);
  DIR* d = fdopendir(dup(scratchFd));
  if (!d) abort();
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != ".." && n != "root") abort();  // an entry escaped the root
  }
  closedir(d);
  (void)osb::images::RemoveTreeAt(scratchFd, "root");
  close(scratchFd);

  int memFd = memfd_create("layer", MFD_CLOEXEC);
  if (memFd < 0) abort();
  if (size > 0 && write(memFd, data, size) != static_cast<ssize_t>(size)) abort();
  osb::images::ApplyBudget scanBudget{1 << 20, 256};
  std::set<std::string> symlinks;
  (void)osb::images::ScanLayer(memFd, "layer", scanBudget, symlinks);
  if (scanBudget.bytesLeft > (1u << 20) || scanBudget.entriesLeft > 256) abort();
  close(memFd);
  return 0;
}
