// Backoff for accept loops. When a process runs out of descriptors
// (EMFILE/ENFILE) or kernel memory (ENOBUFS/ENOMEM), the listening socket
// stays readable and an immediate retry fails the same way: a loop that
// retries at once spins a core and (if it logs) floods the log. Instead the
// loop waits Next() — 10 ms, doubling up to 1 s — and calls Reset() after the
// next successful accept. Not thread-safe: one per accept loop.
#pragma once

#include <chrono>

namespace osb {

class AcceptBackoff {
 public:
  static constexpr std::chrono::milliseconds kInitial{10};
  static constexpr std::chrono::milliseconds kMax{1000};

  // The pause before the next accept attempt: kInitial, then doubling, capped at kMax.
  std::chrono::milliseconds Next();
  void Reset() { next_ = std::chrono::milliseconds{0}; }

 private:
  std::chrono::milliseconds next_{0};
};

// How an accept loop should treat accept(2)'s errno:
enum class AcceptErrorKind {
  kRetryNow,   // the peer gave up before we accepted it (ECONNABORTED, EPROTO, EINTR, ...)
  kBackOff,    // resource exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM, EPERM from a firewall ...)
  kStop,       // the listener is closed or broken (ECANCELED, EBADF, EINVAL, ENOTSOCK)
};
AcceptErrorKind ClassifyAcceptError(int err);

}  // namespace osb
