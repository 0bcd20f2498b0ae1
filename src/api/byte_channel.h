// ByteChannel: a bounded queue of byte chunks between an HTTP connection
// (a coroutine that must never block its I/O thread) and a worker call on a
// long-call thread (which may block). It carries a streamed request body
// (connection -> worker) or response body (worker -> connection) with at
// most `max_chunks` chunks in flight, so memory per transfer is bounded
// whatever the size.
//
// Ends: the producer calls Finish() after its last chunk (a clean end);
// either side calls Abort() to give up (client gone, worker error); both
// wake the other side. After Abort, Push fails and Pop returns nothing.
// The non-blocking side polls with TryPush/TryPop and is told of every
// change through the notifier (called without the lock held, from any
// thread). Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace osb::api {

class ByteChannel {
 public:
  explicit ByteChannel(size_t max_chunks = 4) : max_chunks_(max_chunks == 0 ? 1 : max_chunks) {}

  enum class Poll { kReady, kWait, kClosed };

  // Blocking side.
  // Waits for room; false when the channel was aborted (nothing queued).
  bool Push(std::string chunk);
  // Waits for a chunk; nullopt at the end: check aborted() to tell a clean
  // end from a failure.
  std::optional<std::string> Pop();

  // Non-blocking side. TryPush moves `chunk` in when kReady.
  Poll TryPush(std::string& chunk);
  // kReady with a chunk in *out; kClosed at the end (or after Abort).
  Poll TryPop(std::string* out);

  void Finish();
  void Abort();
  bool aborted() const;

  void SetNotifier(std::function<void()> notify);

 private:
  void Notify();

  const size_t max_chunks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> chunks_;
  bool finished_ = false;
  bool aborted_ = false;
  std::function<void()> notify_;
};

}  // namespace osb::api
