#include "common/accept_backoff.h"

#include <algorithm>
#include <cerrno>

namespace osb {

std::chrono::milliseconds AcceptBackoff::Next() {
  next_ = next_.count() == 0 ? kInitial : std::min(next_ * 2, kMax);
  return next_;
}

AcceptErrorKind ClassifyAcceptError(int err) {
  switch (err) {
    case ECONNABORTED:
    case EPROTO:
    case EINTR:
    case EAGAIN:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return AcceptErrorKind::kRetryNow;
    case ECANCELED:
    case EBADF:
    case EINVAL:
    case ENOTSOCK:
      return AcceptErrorKind::kStop;
    default:  // EMFILE, ENFILE, ENOBUFS, ENOMEM, EPERM and anything unexpected
      return AcceptErrorKind::kBackOff;
  }
}

}  // namespace osb
