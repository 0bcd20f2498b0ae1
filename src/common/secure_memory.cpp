#include "common/secure_memory.h"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

extern char** environ;

namespace osb {
namespace {

size_t PageRound(size_t bytes) {
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

}  // namespace

void SecureWipe(void* data, size_t size) {
  if (data != nullptr && size > 0) OPENSSL_cleanse(data, size);
}

void* AllocateDontDump(size_t bytes) {
  const size_t len = PageRound(bytes == 0 ? 1 : bytes);
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  (void)::madvise(p, len, MADV_DONTDUMP);
  (void)::mlock(p, len);  // best effort: RLIMIT_MEMLOCK may forbid it
  return p;
}

void FreeDontDump(void* p, size_t bytes) {
  if (p == nullptr) return;
  const size_t len = PageRound(bytes == 0 ? 1 : bytes);
  SecureWipe(p, len);
  (void)::munlock(p, len);
  ::munmap(p, len);
}

bool MakeProcessUndumpable() {
  const rlimit none{0, 0};
  (void)::setrlimit(RLIMIT_CORE, &none);
  return ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
}

void RemoveFromEnvironment(const char* name) {
  const size_t len = std::strlen(name);
  std::vector<char*> entries;  // an environment may repeat a name
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, name, len) == 0 && (*e)[len] == '=') entries.push_back(*e);
  }
  ::unsetenv(name);
  for (char* entry : entries) SecureWipe(entry, std::strlen(entry));
}

}  // namespace osb
