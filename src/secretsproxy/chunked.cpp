#include "secretsproxy/chunked.h"

#include <algorithm>
#include <cstdio>

#include "common/hex.h"

namespace osb::secretsproxy {
namespace {

constexpr size_t kMaxSizeLine = 4096;
constexpr size_t kMaxTrailer = 16 * 1024;

}  // namespace

ChunkedDecoder::Status ChunkedDecoder::Decode(std::string_view in, size_t* consumed, std::string* data) {
  size_t i = 0;
  while (i < in.size()) {
    switch (state_) {
      case State::kSize:
      case State::kTrailer: {
        const size_t nl = in.find('\n', i);
        const size_t take = (nl == std::string_view::npos ? in.size() : nl + 1) - i;
        line_.append(in.data() + i, take);
        i += take;
        if (state_ == State::kSize && line_.size() > kMaxSizeLine) return Fail("chunk size line too long");
        if (state_ == State::kTrailer && (trailer_bytes_ += take) > kMaxTrailer) return Fail("trailer too large");
        if (nl == std::string_view::npos) break;
        if (line_.size() < 2 || line_[line_.size() - 2] != '\r') return Fail("bare LF in chunked framing");
        std::string_view line(line_.data(), line_.size() - 2);
        if (line.find('\r') != std::string_view::npos) return Fail("bare CR in chunked framing");
        if (state_ == State::kTrailer) {
          if (line.empty()) {
            state_ = State::kDone;
            *consumed = i;
            return Status::kDone;
          }
          if (line[0] == ' ' || line[0] == '\t' || line.find(':') == std::string_view::npos) {
            return Fail("malformed trailer field");
          }
          line_.clear();
          break;
        }
        size_t digits = 0;
        uint64_t size = 0;
        while (digits < line.size() && HexDigitValue(line[digits]) >= 0) {
          if (digits == 16) return Fail("chunk size too large");
          size = (size << 4) | static_cast<uint64_t>(HexDigitValue(line[digits]));
          ++digits;
        }
        if (digits == 0) return Fail("invalid chunk size");
        if (digits < line.size() && line[digits] != ';') return Fail("invalid chunk size");
        for (size_t k = digits; k < line.size(); ++k) {
          auto c = static_cast<unsigned char>(line[k]);
          if (c < 0x20 && c != '\t') return Fail("invalid chunk extension");
        }
        line_.clear();
        if (size == 0) {
          state_ = State::kTrailer;
        } else {
          remaining_ = size;
          state_ = State::kData;
        }
        break;
      }
      case State::kData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
        data->append(in.data() + i, take);
        i += take;
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (in[i++] != '\r') return Fail("missing CRLF after chunk data");
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (in[i++] != '\n') return Fail("missing CRLF after chunk data");
        state_ = State::kSize;
        break;
      case State::kDone:
        *consumed = i;
        return Status::kDone;
    }
  }
  *consumed = i;
  return state_ == State::kDone ? Status::kDone : Status::kNeedMore;
}

void AppendChunk(std::string_view data, std::string* out) {
  if (data.empty()) return;
  char head[24];
  const int n = std::snprintf(head, sizeof(head), "%zx\r\n", data.size());
  out->append(head, static_cast<size_t>(n));
  out->append(data);
  out->append("\r\n");
}

}  // namespace osb::secretsproxy
