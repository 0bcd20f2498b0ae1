// Secret material in memory: wiping buffers, keeping key material out of
// core dumps, and the process-level hygiene of processes that hold keys or
// secret values. Wiping uses OPENSSL_cleanse so the compiler cannot elide
// the write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

namespace osb {

void SecureWipe(void* data, size_t size);
inline void SecureWipe(std::string& s) { SecureWipe(s.data(), s.size()); s.clear(); }
inline void SecureWipe(std::vector<uint8_t>& v) { SecureWipe(v.data(), v.size()); v.clear(); }

// Pages of their own for key material: mmap'd, marked MADV_DONTDUMP (never in
// a core dump) and mlock'ed where the limit allows (never swapped); wiped
// before they are unmapped. Throws std::bad_alloc if mmap fails.
void* AllocateDontDump(size_t bytes);
void FreeDontDump(void* p, size_t bytes);

// A std allocator over AllocateDontDump, for containers of key material
// (e.g. std::vector<Key, DontDumpAllocator<Key>>). Each allocation takes
// whole pages: use it for a few small, long-lived objects only.
template <typename T>
struct DontDumpAllocator {
  using value_type = T;
  DontDumpAllocator() = default;
  template <typename U>
  DontDumpAllocator(const DontDumpAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(AllocateDontDump(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { FreeDontDump(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const DontDumpAllocator<U>&) const noexcept { return true; }
};

// PR_SET_DUMPABLE 0 (no core dumps, no ptrace or /proc/PID/mem access by
// other processes of the same user) and RLIMIT_CORE 0, for every process
// that holds keys or secret values. Returns false if prctl failed.
bool MakeProcessUndumpable();

// Removes NAME from the environment once it has been read, and overwrites
// the original "NAME=value" bytes, so the value no longer shows in
// /proc/PID/environ (which reads the process's initial environment block,
// not the libc array unsetenv edits). Call before starting threads.
void RemoveFromEnvironment(const char* name);

}  // namespace osb
