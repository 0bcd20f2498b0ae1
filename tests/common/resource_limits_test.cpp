// Unit tests for the small primitives that bound what one sandbox can cost
// the worker: accept backoff, rate-limited log lines, the descriptor budget,
// per-key slots, the rotating log file and the memory trimmer.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <thread>
#include <vector>

#include "common/accept_backoff.h"
#include "common/fd_budget.h"
#include "common/keyed_slots.h"
#include "common/memory_trim.h"
#include "common/rate_limited_log.h"
#include "common/rotating_file.h"

namespace osb {
namespace {

using std::chrono::milliseconds;

TEST(AcceptBackoff, DoublesFromTenMillisecondsToOneSecondAndResets) {
  AcceptBackoff b;
  std::vector<long> seen;
  for (int i = 0; i < 10; ++i) seen.push_back(b.Next().count());
  EXPECT_EQ(seen, (std::vector<long>{10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000}));
  b.Reset();
  EXPECT_EQ(b.Next().count(), 10);
}

TEST(AcceptBackoff, ClassifiesErrors) {
  EXPECT_EQ(ClassifyAcceptError(EMFILE), AcceptErrorKind::kBackOff);
  EXPECT_EQ(ClassifyAcceptError(ENFILE), AcceptErrorKind::kBackOff);
  EXPECT_EQ(ClassifyAcceptError(ENOBUFS), AcceptErrorKind::kBackOff);
  EXPECT_EQ(ClassifyAcceptError(ENOMEM), AcceptErrorKind::kBackOff);
  EXPECT_EQ(ClassifyAcceptError(ECONNABORTED), AcceptErrorKind::kRetryNow);
  EXPECT_EQ(ClassifyAcceptError(ECANCELED), AcceptErrorKind::kStop);
  EXPECT_EQ(ClassifyAcceptError(EBADF), AcceptErrorKind::kStop);
}

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  RateLimitedLog::Clock fn() {
    return [this] { return now; };
  }
};

TEST(RateLimitedLog, AdmitsBurstPerWindowAndCountsTheRest) {
  FakeClock clock;
  RateLimitedLog log({.burst = 3, .window = milliseconds(1000), .max_keys = 16}, clock.fn());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(log.Admit("sb1", "refused"), std::optional<uint64_t>(0));
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(log.Admit("sb1", "refused"));
  // Other kinds and other sandboxes have their own allowance.
  EXPECT_EQ(log.Admit("sb1", "parse error"), std::optional<uint64_t>(0));
  EXPECT_EQ(log.Admit("sb2", "refused"), std::optional<uint64_t>(0));
  EXPECT_EQ(log.suppressed_total(), 1000u);
  // Next window: the first line says how many were left out, once.
  clock.now += milliseconds(1000);
  EXPECT_EQ(log.Admit("sb1", "refused"), std::optional<uint64_t>(1000));
  EXPECT_EQ(log.Admit("sb1", "refused"), std::optional<uint64_t>(0));
  EXPECT_EQ(RateLimitedLog::Suffix(1000), " (1000 similar suppressed)");
  EXPECT_EQ(RateLimitedLog::Suffix(0), "");
}


TEST(RateLimitedLog, TableIsBoundedWhateverTheKeys) {
  FakeClock clock;
  RateLimitedLog log({.burst = 1, .window = milliseconds(1000), .max_keys = 8}, clock.fn());
  size_t admitted = 0;
  for (int i = 0; i < 10000; ++i) {
    if (log.Admit("source-" + std::to_string(i), "refused")) ++admitted;
  }
  EXPECT_LE(log.tracked_pairs(), 9u);  // 8 + the shared overflow entry
  EXPECT_LE(admitted, 9u);
  // Once their window has passed, old pairs make room again.
  clock.now += milliseconds(1001);
  EXPECT_TRUE(log.Admit("fresh", "refused"));
  EXPECT_LE(log.tracked_pairs(), 2u);
}

TEST(FdBudget, RefusesBeyondCapacityAndGivesBackOnRelease) {
  FdBudget b(100, 40);
  EXPECT_EQ(b.capacity(), 60u);
  std::vector<FdBudget::Lease> leases;
  for (int i = 0; i < 30; ++i) {
    auto l = b.TryAcquire(2);
    ASSERT_TRUE(l) << i;
    leases.push_back(std::move(*l));
  }
  EXPECT_EQ(b.in_use(), 60u);
  EXPECT_FALSE(b.TryAcquire(1));
  EXPECT_EQ(b.refused(), 1u);
  leases.pop_back();
  EXPECT_EQ(b.in_use(), 58u);
  EXPECT_TRUE(b.TryAcquire(2));  // temporary: released at once
  EXPECT_EQ(b.in_use(), 58u);
}

TEST(FdBudget, ADescriptorNumberPastCapacityIsRefused) {
  // accept() returns the lowest free number: fd N means N are open, counted or not.
  FdBudget b(100, 40);
  EXPECT_TRUE(b.TryAcquire(1, 59));
  EXPECT_FALSE(b.TryAcquire(1, 60));
  EXPECT_EQ(b.in_use(), 0u);
}

TEST(FdBudget, DefaultReserveKeepsRoomForTheControlChannel) {
  EXPECT_EQ(FdBudget::DefaultReserve(1024), 256u);
  EXPECT_EQ(FdBudget::DefaultReserve(256), 64u);
  EXPECT_EQ(FdBudget::DefaultReserve(1 << 20), 1024u);
  EXPECT_EQ(FdBudget::DefaultReserve(64), 32u);
}

TEST(FdBudget, RaiseFileLimitReachesTheHardLimit) {
  rlimit lim{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  const rlimit saved = lim;
  if (lim.rlim_max > 64) {
    lim.rlim_cur = 64;
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  }
  const size_t now = RaiseFileLimit();
  EXPECT_EQ(now, saved.rlim_max == RLIM_INFINITY ? size_t{1} << 20 : static_cast<size_t>(saved.rlim_max));
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

TEST(FdBudget, CountOpenFdsSeesNewDescriptors) {
  const long before = CountOpenFds();
  ASSERT_GT(before, 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_EQ(CountOpenFds(), before + 2);
  close(fds[0]);
  close(fds[1]);
}

TEST(KeyedSlots, CapsEachKeyAlone) {
  KeyedSlots slots;
  std::vector<KeyedSlots::Slot> held;
  for (int i = 0; i < 4; ++i) {
    auto s = slots.TryAcquire("sb1", 4);
    ASSERT_TRUE(s);
    held.push_back(std::move(*s));
  }
  EXPECT_FALSE(slots.TryAcquire("sb1", 4));
  EXPECT_TRUE(slots.TryAcquire("sb2", 4));
  EXPECT_EQ(slots.Count("sb1"), 4u);
  held.front().Release();
  EXPECT_EQ(slots.Count("sb1"), 3u);
  held.clear();
  EXPECT_EQ(slots.Total(), 0u);
}

TEST(KeyedSlots, ASlotMayOutliveItsTable) {
  std::optional<KeyedSlots::Slot> s;
  {
    KeyedSlots slots;
    s = slots.TryAcquire("k", 1);
  }
  s.reset();  // no use-after-free (ASan)
}

TEST(KeyedSlots, ConcurrentAcquireNeverExceedsTheCap) {
  KeyedSlots slots;
  std::atomic<int> got{0};
  std::vector<std::thread> ts;
  std::mutex mu;
  std::vector<KeyedSlots::Slot> held;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        auto s = slots.TryAcquire("k", 50);
        if (!s) continue;
        ++got;
        std::lock_guard l(mu);
        held.push_back(std::move(*s));
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(got.load(), 50);
}

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class RotatingFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("osb_rotating_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(RotatingFileTest, RotatesAtTheCapAndKeepsNFiles) {
  const auto path = (dir_ / "audit.log").string();
  RotatingFile f(path, 100, 2);
  ASSERT_TRUE(f.ok());
  const std::string line(30, 'x');
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(f.Append(line + std::to_string(i % 10) + "\n"));
  // 32-byte lines, 3 per 100-byte file.
  EXPECT_LE(std::filesystem::file_size(path), 100u);
  EXPECT_LE(std::filesystem::file_size(path + ".1"), 100u);
  EXPECT_LE(std::filesystem::file_size(path + ".2"), 100u);
  EXPECT_FALSE(std::filesystem::exists(path + ".3"));
  EXPECT_GT(f.rotations(), 2u);
  // The newest line is in the current file; lines are never split.
  const std::string cur = ReadAll(path);
  EXPECT_NE(cur.find(line + "9\n"), std::string::npos);
  EXPECT_EQ(cur.size() % 32, 0u);
  EXPECT_EQ(ReadAll(path + ".1").size() % 32, 0u);
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(RotatingFileTest, KeepZeroTruncatesInPlace) {
  const auto path = (dir_ / "a.log").string();
  RotatingFile f(path, 64, 0);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(f.Append(std::string(15, 'a') + "\n"));
  EXPECT_LE(std::filesystem::file_size(path), 64u);
  EXPECT_FALSE(std::filesystem::exists(path + ".1"));
}

TEST_F(RotatingFileTest, AppendsToAnExistingFileCountingItsSize) {
  const auto path = (dir_ / "b.log").string();
  { std::ofstream(path) << std::string(90, 'o') << "\n"; }
  RotatingFile f(path, 100, 1);
  ASSERT_TRUE(f.Append(std::string(20, 'n') + "\n"));
  EXPECT_EQ(std::filesystem::file_size(path + ".1"), 91u);
  EXPECT_EQ(std::filesystem::file_size(path), 21u);
}

TEST_F(RotatingFileTest, NoCapMeansNoRotation) {
  const auto path = (dir_ / "c.log").string();
  RotatingFile f(path, 0, 3);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(f.Append(std::string(99, 'c') + "\n"));
  EXPECT_EQ(std::filesystem::file_size(path), 10000u);
  EXPECT_EQ(f.rotations(), 0u);
}

TEST(MemoryTrimmer, TrimsWhenTheLiveCountFallsAfterABurst) {
  MemoryTrimmer t(milliseconds(1));
  for (int i = 1; i <= 100; ++i) t.Note(i);
  EXPECT_EQ(t.trims(), 0u);
  for (int i = 99; i >= 0; --i) t.Note(i);
  // The trim runs on the trimmer's thread; wait for it (bounded).
  for (int i = 0; i < 2000 && t.trims() == 0; ++i) std::this_thread::sleep_for(milliseconds(1));
  EXPECT_GE(t.trims(), 1u);
}

TEST(MemoryTrimmer, SteadyLoadDoesNotTrim) {
  MemoryTrimmer t(milliseconds(1));
  for (int i = 0; i < 1000; ++i) t.Note(50 + (i % 2));  // 50, 51, 50, ...
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(t.trims(), 0u);
}

}  // namespace
}  // namespace osb
