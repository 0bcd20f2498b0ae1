#include "secretsproxy/body_relay.h"

#include <algorithm>

#include "common/secure_memory.h"
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

bool BodyReader::Ready() const {
  if (done_) return true;
  switch (framing_.kind) {
    case BodyFraming::kNone:
      return true;
    case BodyFraming::kContentLength:
      return remaining_ == 0 || !buf_.empty();
    case BodyFraming::kUntilClose:
      return !buf_.empty();
    case BodyFraming::kChunked: {
      if (buf_.empty()) return false;
      // Would the buffered bytes decode to data, the end or an error? (A
      // trial on a copy of the decoder: called once per corked piece.)
      ChunkedDecoder trial = decoder_;
      std::string data;
      size_t consumed = 0;
      const auto st = trial.Decode(buf_, &consumed, &data);
      return st != ChunkedDecoder::Status::kNeedMore || !data.empty();
    }
  }
  return false;
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

asio::awaitable<bool> BodyWriter::Emit(std::string_view bytes) {
  wire_bytes_ += bytes.size();
  if (corked_) {
    gathered_.append(bytes);
    if (gathered_.size() < kReadChunk) co_return true;
    co_return co_await Uncork();
  }
  error_code ec;
  co_await dst_.WriteAll(bytes, idle_, ec);
  co_return !ec;
}

asio::awaitable<bool> BodyWriter::Send(std::string_view payload) {
  if (payload.empty()) co_return true;
  if (out_ != OutFraming::kChunked) co_return co_await Emit(payload);
  wire_.clear();
  AppendChunk(payload, &wire_);
  co_return co_await Emit(wire_);
}

void BodyWriter::Cork(std::string prefix) {
  corked_ = true;
  wire_bytes_ += prefix.size();
  gathered_ = std::move(prefix);
}

asio::awaitable<bool> BodyWriter::Uncork() {
  corked_ = false;
  if (gathered_.empty()) co_return true;
  error_code ec;
  co_await dst_.WriteAll(gathered_, idle_, ec);
  SecureWipe(gathered_);  // a request body's last piece may hold a substituted value
  if (gathered_.capacity() > 4 * kReadChunk) std::string().swap(gathered_);
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
  // The last bytes (the replacer's hold-back, the encoder's trailer) and the
  // chunked terminator go out in one write.
  const bool was_corked = corked_;
  if (!was_corked) Cork({});
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
    const bool sent = co_await Emit(kLastChunk);
    if (!sent) co_return false;
  }
  if (was_corked) co_return true;
  co_return co_await Uncork();
}

}  // namespace osb::secretsproxy
