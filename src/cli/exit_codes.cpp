#include "cli/exit_codes.h"

namespace osb::cli {

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kTooLarge:
      return kExitRejected;
    case ErrorCode::kNotFound:
      return kExitNotFound;
    case ErrorCode::kUnauthenticated:
      return kExitAuth;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict:
      return kExitConflict;
    case ErrorCode::kFailedPrecondition:
      return kExitUsage;
    case ErrorCode::kUnavailable:
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kDataLoss:
    case ErrorCode::kInternal:
      return kExitFailure;
  }
  return kExitFailure;
}

}  // namespace osb::cli
