#include "common/fd_budget.h"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>

namespace osb {

FdBudget::Lease& FdBudget::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    Release();
    budget_ = o.budget_;
    n_ = o.n_;
    o.budget_ = nullptr;
  }
  return *this;
}

void FdBudget::Lease::Release() {
  if (budget_ != nullptr) budget_->in_use_.fetch_sub(n_);
  budget_ = nullptr;
}

void FdBudget::Configure(size_t limit, size_t reserve) {
  reserve = std::min(reserve, limit);
  limit_ = limit;
  reserve_ = reserve;
  capacity_ = limit - reserve;
}

size_t FdBudget::DefaultReserve(size_t limit) {
  size_t r = std::max<size_t>(64, std::min<size_t>(limit / 4, 1024));
  return std::min(r, limit / 2);
}

std::optional<FdBudget::Lease> FdBudget::TryAcquire(size_t n, int fd) {
  const size_t cap = capacity_.load();
  if (fd >= 0 && static_cast<size_t>(fd) >= cap) {
    ++refused_;
    return std::nullopt;
  }
  size_t cur = in_use_.load();
  do {
    if (cur + n > cap) {
      ++refused_;
      return std::nullopt;
    }
  } while (!in_use_.compare_exchange_weak(cur, cur + n));
  return Lease(this, n);
}

namespace {
size_t CurrentSoftLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur == RLIM_INFINITY) return 1 << 20;
  return static_cast<size_t>(lim.rlim_cur);
}
}  // namespace

FdBudget& FdBudget::Process() {
  static FdBudget* budget = [] {
    const size_t limit = CurrentSoftLimit();
    return new FdBudget(limit, DefaultReserve(limit));  // never destroyed: leases may outlive main
  }();
  return *budget;
}

size_t RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  return CurrentSoftLimit();
}

std::string InitProcessFdBudget(size_t reserve) {
  const size_t limit = RaiseFileLimit();
  if (reserve == 0) reserve = FdBudget::DefaultReserve(limit);
  FdBudget::Process().Configure(limit, reserve);
  const auto& b = FdBudget::Process();
  return "descriptor limit " + std::to_string(b.limit()) + ", " + std::to_string(b.reserve()) +
         " reserved for the control channel, " + std::to_string(b.capacity()) + " for sandbox connections";
}

long CountOpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  long n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace osb
