// Shutdown on SIGTERM/SIGINT for long-running verbs: block the signals in
// every thread (call before starting any), then wait for one synchronously.
#pragma once

#include <signal.h>

namespace osb::cmd {

inline void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Returns the signal number received.
inline int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace osb::cmd
