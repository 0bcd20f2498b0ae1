#include "secretsproxy/body_relay.h"

#include <algorithm>

#include "secretsproxy/content_encoder.h"

namespace osb::secretsproxy {
namespace asio = boost::asio;
using boost::system::error_code;

BodyReader::BodyReader(ByteStream& src, std::string& buf, BodyFraming framing, Millis idle)
    : src_(src), buf_(buf), framing_(framing), idle_(idle), remaining_(framing.length) {}

asio::awaitable<bool> BodyReader::Fill(std::string* reason) {
  const size_t old = buf_.size();
  buf_.resize(old + kReadChunk);
  error_code ec;
  const size_t n = co_await src_.ReadSome(buf_.data() + old, kReadChunk, idle_, ec);
  buf_.resize(old + n);
  wire_bytes_ += n;
  if (n == 0) {
    *reason = ec == asio::error::timed_out ? "timed out reading body"
              : ec == asio::error::eof     ? "eof"
                                           : "connection error reading body";
    co_return false;
  }
  co_return true;
}

asio::awaitable<BodyReader::Status> BodyReader::Next(std::string* out, std::string* reason) {
  if (done_) co_return Status::kDone;
  switch (framing_.kind) {
    case BodyFraming::kNone:
      done_ = true;
      co_return Status::kDone;
    case BodyFraming::kContentLength: {
      if (remaining_ == 0) {
        done_ = true;
        co_return Status::kDone;
      }
      if (buf_.empty()) {
        const bool filled = co_await Fill(reason);
        if (!filled) {
          if (*reason == "eof") *reason = "body shorter than Content-Length";
          co_return Status::kError;
        }
      }
      const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, buf_.size()));
      out->append(buf_.data(), take);
      buf_.erase(0, take);
      remaining_ -= take;
      if (remaining_ == 0) {
        done_ = true;
        co_return Status::kDone;
      }
      co_return Status::kData;
    }
    case BodyFraming::kChunked:
      while (true) {
        if (!buf_.empty()) {
          size_t consumed = 0;
          const size_t before = out->size();
          auto st = decoder_.Decode(buf_, &consumed, out);
          buf_.erase(0, consumed);
          if (st == ChunkedDecoder::Status::kBad) {
            *reason = decoder_.error();
            co_return Status::kError;
          }
          if (st == ChunkedDecoder::Status::kDone) {
            done_ = true;
            co_return Status::kDone;
          }
          if (out->size() > before) co_return Status::kData;
        }
        const bool filled = co_await Fill(reason);
        if (!filled) {
          if (*reason == "eof") *reason = "chunked body ended early";
          co_return Status::kError;
        }
      }
    case BodyFraming::kUntilClose:
      if (buf_.empty()) {
        const bool filled = co_await Fill(reason);
        if (!filled) {
          if (*reason == "eof") {
            done_ = true;
            co_return Status::kDone;
          }
          co_return Status::kError;
        }
      }
      out->append(buf_);
      buf_.clear();
      co_return Status::kData;
  }
  std::abort();  // unreachable: every framing kind is handled above
}

BodyPlan PlanBody(const BodyFraming& in, bool replacing, bool dst_accepts_chunked, size_t buffer_limit) {
  const OutFraming streamed = dst_accepts_chunked ? OutFraming::kChunked : OutFraming::kClose;
  switch (in.kind) {
    case BodyFraming::kNone:
      return {false, OutFraming::kNone};
    case BodyFraming::kContentLength:
      if (!replacing) return {false, OutFraming::kLength};
      if (in.length <= buffer_limit) return {true, OutFraming::kLength};
      return {false, streamed};
    case BodyFraming::kChunked:
      return {false, streamed};
    case BodyFraming::kUntilClose:
      return {false, OutFraming::kClose};
  }
  std::abort();
}

void ApplyPlanToFields(const BodyPlan& plan, uint64_t body_length, std::vector<HeaderField>* fields) {
  if (plan.out == OutFraming::kNone) return;
  RemoveFields(fields, "content-length");
  RemoveFields(fields, "transfer-encoding");
  if (plan.out == OutFraming::kLength) fields->push_back({"Content-Length", std::to_string(body_length)});
  if (plan.out == OutFraming::kChunked) fields->push_back({"Transfer-Encoding", "chunked"});
}

BodyWriter::BodyWriter(ByteStream& dst, OutFraming out, StreamReplacer* replacer, Millis idle,
                       ContentEncoder* encoder)
    : dst_(dst), out_(out), replacer_(replacer), idle_(idle), encoder_(encoder) {}

asio::awaitable<bool> BodyWriter::Send(std::string_view payload) {
  if (payload.empty()) co_return true;
  std::string_view bytes = payload;
  if (out_ == OutFraming::kChunked) {
    wire_.clear();
    AppendChunk(payload, &wire_);
    bytes = wire_;
  }
  error_code ec;
  co_await dst_.WriteAll(bytes, idle_, ec);
  wire_bytes_ += bytes.size();
  co_return !ec;
}

asio::awaitable<bool> BodyWriter::Write(std::string_view piece) {
  std::string_view data = piece;
  if (replacer_ != nullptr) {
    scratch_.clear();
    replacer_->Feed(piece, &scratch_);
    data = scratch_;
  }
  if (encoder_ != nullptr) {
    encoded_.clear();
    if (!encoder_->Write(data, &encoded_)) co_return false;
    data = encoded_;
  }
  co_return co_await Send(data);
}

asio::awaitable<bool> BodyWriter::Finish() {
  if (replacer_ != nullptr || encoder_ != nullptr) {
    scratch_.clear();
    if (replacer_ != nullptr) replacer_->Finish(&scratch_);
    std::string_view data = scratch_;
    if (encoder_ != nullptr) {
      encoded_.clear();
      if (!encoder_->Write(scratch_, &encoded_) || !encoder_->Finish(&encoded_)) co_return false;
      data = encoded_;
    }
    const bool sent = co_await Send(data);
    if (!sent) co_return false;
  }
  if (out_ == OutFraming::kChunked) {
    error_code ec;
    co_await dst_.WriteAll(kLastChunk, idle_, ec);
    wire_bytes_ += kLastChunk.size();
    co_return !ec;
  }
  co_return true;
}

}  // namespace osb::secretsproxy
