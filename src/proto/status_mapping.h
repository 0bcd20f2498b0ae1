// One mapping between osb::Error codes and gRPC status codes, used by both
// ends of the control plane <-> worker channel so an error keeps its meaning
// (a bad field stays a 400, an unknown sandbox a 404) across the hop.
#pragma once

#include <grpcpp/support/status.h>

#include "common/result.h"

namespace osb::proto {

inline grpc::StatusCode ToGrpcCode(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case ErrorCode::kAlreadyExists: return grpc::StatusCode::ALREADY_EXISTS;
    case ErrorCode::kConflict: return grpc::StatusCode::ABORTED;
    case ErrorCode::kTooLarge: return grpc::StatusCode::OUT_OF_RANGE;
    case ErrorCode::kResourceExhausted: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ErrorCode::kUnauthenticated: return grpc::StatusCode::UNAUTHENTICATED;
    case ErrorCode::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    case ErrorCode::kFailedPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case ErrorCode::kDataLoss: return grpc::StatusCode::DATA_LOSS;
    case ErrorCode::kInternal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

inline ErrorCode FromGrpcCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::INVALID_ARGUMENT: return ErrorCode::kInvalidArgument;
    case grpc::StatusCode::NOT_FOUND: return ErrorCode::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS: return ErrorCode::kAlreadyExists;
    case grpc::StatusCode::ABORTED: return ErrorCode::kConflict;
    case grpc::StatusCode::OUT_OF_RANGE: return ErrorCode::kTooLarge;
    case grpc::StatusCode::UNAUTHENTICATED: return ErrorCode::kUnauthenticated;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return ErrorCode::kResourceExhausted;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED: return ErrorCode::kUnavailable;
    case grpc::StatusCode::FAILED_PRECONDITION: return ErrorCode::kFailedPrecondition;
    case grpc::StatusCode::DATA_LOSS: return ErrorCode::kDataLoss;
    default: return ErrorCode::kInternal;
  }
}

inline grpc::Status ToGrpcStatus(const Error& e) { return {ToGrpcCode(e.code), e.message}; }

inline Error FromGrpcStatus(const grpc::Status& s) {
  return MakeError(FromGrpcCode(s.error_code()), s.error_message());
}

}  // namespace osb::proto
