// Room for reading a request body through Beast.
//
// Beast reads a body through the connection's flat_buffer and sizes every
// socket read by the room the buffer already has: beast::read_size gives
// max(512, capacity - size), capped at 64 KiB. After a header the capacity
// is what the header needed — often under 1 KiB — and a flat_buffer only
// grows when a read asks for more than its capacity, so a large body used
// to arrive 512 bytes per read, each a trip through the reactor and the
// connection's strand: the upload stall of issue 15 (1 GiB PUT at ~6 MB/s
// in a Debug build, ~60 MB/s in Release). ReserveBodyReads gives the
// buffer room for full-size reads before the body is read.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/optional/optional.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace osb::api {

// A streamed body (Router::AddStreaming) goes to its handler in pieces of
// at most this size (the size of one gRPC file chunk, so a piece crosses
// every hop whole); ByteChannel bounds how many are in flight.
inline constexpr size_t kStreamPieceBytes = 1024 * 1024;

// Beast's own cap on one read of a message (http::async_read's read_size).
inline constexpr size_t kBodyReadBytes = 64 * 1024;

// `expected` is the declared Content-Length when there is one (no room
// beyond the body is reserved for a short body); none for a chunked or
// unknown-length body (boost::optional: what Beast's parsers return).
inline void ReserveBodyReads(boost::beast::flat_buffer& buffer, const boost::optional<std::uint64_t>& expected) {
  size_t want = kBodyReadBytes;
  if (expected) want = static_cast<size_t>(std::min<std::uint64_t>(*expected, kBodyReadBytes));
  if (buffer.capacity() < buffer.size() + want) buffer.reserve(buffer.size() + want);
}

}  // namespace osb::api
