#include "secretsproxy/content_decoder.h"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace osb::secretsproxy {
namespace {

// Decoded bytes an inner layer hands to the next one per step.
constexpr size_t kInnerPiece = 16 * 1024;
// The most one Read appends, whatever the caller allows.
constexpr size_t kMaxRead = 1 << 20;

enum class Step { kMore, kNeedInput, kError };

Error Bad(Coding c, std::string_view why) {
  return MakeError(ErrorCode::kInvalidArgument, std::string(CodingName(c)) + ": " + std::string(why));
}

// One coding. Run consumes a prefix of *in (a layer may leave bytes it
// cannot use yet, e.g. half a header, and report kNeedInput) and appends at
// most `max` bytes to *out. kMore: the output limit was reached.
// kNeedInput: no progress is possible without more input.
class Layer {
 public:
  virtual ~Layer() = default;
  virtual Step Run(std::string_view* in, size_t max, std::string* out) = 0;
  // May the input end here (given no byte is left unconsumed)?
  virtual bool AtEnd() const = 0;
  const Error& error() const { return error_; }

 protected:
  Step Fail(Error e) {
    error_ = std::move(e);
    return Step::kError;
  }
  Error error_;
};

// Appends room for up to `max` bytes to *out; Commit trims to what was used.
char* Grow(std::string* out, size_t max, size_t* base) {
  *base = out->size();
  out->resize(*base + max);
  return out->data() + *base;
}

// ---- gzip / deflate (zlib) ---------------------------------------------------

class ZlibLayer final : public Layer {
 public:
  explicit ZlibLayer(Coding coding) : coding_(coding) {}
  ~ZlibLayer() override {
    if (initialized_) inflateEnd(&zs_);
  }

  Step Run(std::string_view* in, size_t max, std::string* out) override {
    size_t produced = 0;
    while (true) {
      // With input used up, zlib may still hold decoded symbols (raw deflate
      // has no trailer behind them): only a fresh or ended stream may stop.
      if (in->empty() && (!initialized_ || ended_)) return Step::kNeedInput;
      if (!initialized_ || ended_) {
        if (coding_ == Coding::kDeflate && ended_) return Fail(Bad(coding_, "trailing data after the stream"));
        auto s = Start(in);
        if (s != Step::kMore) return s;
      }
      zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in->data()));
      zs_.avail_in = static_cast<uInt>(std::min<size_t>(in->size(), 1u << 30));
      size_t base = 0;
      char* dst = Grow(out, max - produced, &base);
      zs_.next_out = reinterpret_cast<Bytef*>(dst);
      zs_.avail_out = static_cast<uInt>(max - produced);
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      const size_t used_in = in->size() - zs_.avail_in;
      const size_t used_out = (max - produced) - zs_.avail_out;
      in->remove_prefix(used_in);
      out->resize(base + used_out);
      produced += used_out;
      member_in_ += used_in;
      switch (rc) {
        case Z_STREAM_END:
          ended_ = true;
          ++members_;
          break;
        case Z_OK:
        case Z_BUF_ERROR:  // no progress possible: out of input (output has room)
          break;
        case Z_NEED_DICT:
          return Fail(Bad(coding_, "a preset dictionary is not supported"));
        case Z_MEM_ERROR:
          return Fail(MakeError(ErrorCode::kUnavailable, std::string(CodingName(coding_)) + ": out of memory"));
        default: {
          // A bad header right after a complete member: not another member.
          if (coding_ == Coding::kGzip && members_ > 0 && member_in_ <= 10) {
            return Fail(Bad(coding_, "trailing data after the stream"));
          }
          return Fail(Bad(coding_, std::string("corrupt data (") + (zs_.msg ? zs_.msg : "error") + ")"));
        }
      }
      if (produced == max) return Step::kMore;
      if (rc == Z_STREAM_END) continue;
      if (in->empty()) return Step::kNeedInput;  // output had room: zlib needs input
      if (used_in == 0 && used_out == 0) return Fail(Bad(coding_, "no progress"));
    }
  }

  bool AtEnd() const override { return !initialized_ || ended_; }

 private:
  // Starts a stream (or the next gzip member). For deflate, chooses zlib or
  // raw from the first two bytes. kMore = started.
  Step Start(std::string_view* in) {
    int window_bits = 16 + 15;
    if (coding_ == Coding::kDeflate) {
      if (in->size() < 2) return Step::kNeedInput;  // leave the byte for later
      const auto b0 = static_cast<unsigned char>((*in)[0]);
      const auto b1 = static_cast<unsigned char>((*in)[1]);
      const bool zlib = (b0 & 0x0f) == 8 && (b0 >> 4) <= 7 && ((b0 << 8) | b1) % 31 == 0;
      window_bits = zlib ? 15 : -15;
    }
    if (!initialized_) {
      std::memset(&zs_, 0, sizeof(zs_));
      if (inflateInit2(&zs_, window_bits) != Z_OK) {
        return Fail(MakeError(ErrorCode::kUnavailable, std::string(CodingName(coding_)) + ": out of memory"));
      }
      initialized_ = true;
    } else if (inflateReset(&zs_) != Z_OK) {
      return Fail(Bad(coding_, "cannot restart"));
    }
    ended_ = false;
    member_in_ = 0;
    return Step::kMore;
  }

  const Coding coding_;
  z_stream zs_{};
  bool initialized_ = false;
  bool ended_ = false;
  uint64_t members_ = 0;
  uint64_t member_in_ = 0;
};

// ---- br (libbrotli) -------------------------------------------------------------

class BrotliLayer final : public Layer {
 public:
  explicit BrotliLayer(size_t memory_cap) : cap_(memory_cap) {
    state_ = BrotliDecoderCreateInstance(&Alloc, &Free, this);
  }
  ~BrotliLayer() override {
    if (state_) BrotliDecoderDestroyInstance(state_);
  }
  bool ok() const { return state_ != nullptr; }

  Step Run(std::string_view* in, size_t max, std::string* out) override {
    if (ended_) {
      if (in->empty()) return Step::kNeedInput;
      return Fail(Bad(Coding::kBrotli, "trailing data after the stream"));
    }
    if (in->empty() && !started_) return Step::kNeedInput;
    started_ = true;
    size_t avail_in = in->size();
    auto* next_in = reinterpret_cast<const uint8_t*>(in->data());
    size_t base = 0;
    char* dst = Grow(out, max, &base);
    size_t avail_out = max;
    auto* next_out = reinterpret_cast<uint8_t*>(dst);
    const auto r = BrotliDecoderDecompressStream(state_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    in->remove_prefix(in->size() - avail_in);
    out->resize(base + (max - avail_out));
    switch (r) {
      case BROTLI_DECODER_RESULT_SUCCESS:
        ended_ = true;
        if (!in->empty()) return Fail(Bad(Coding::kBrotli, "trailing data after the stream"));
        return avail_out == 0 ? Step::kMore : Step::kNeedInput;
      case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
        return avail_out == 0 ? Step::kMore : Step::kNeedInput;
      case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
        if (avail_out == max) return Fail(Bad(Coding::kBrotli, "no progress"));
        return Step::kMore;
      default: {
        const auto code = BrotliDecoderGetErrorCode(state_);
        const bool alloc = code <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES &&
                           code >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES;
        if (alloc) return Fail(Bad(Coding::kBrotli, "the stream needs more memory than allowed (window too large)"));
        return Fail(Bad(Coding::kBrotli, std::string("corrupt data (") + BrotliDecoderErrorString(code) + ")"));
      }
    }
  }

  bool AtEnd() const override { return ended_ || !started_; }

 private:
  // Allocations are counted against cap_: each block carries its size.
  static void* Alloc(void* opaque, size_t size) {
    auto* self = static_cast<BrotliLayer*>(opaque);
    if (size > self->cap_ || self->used_ > self->cap_ - size) return nullptr;
    auto* p = static_cast<size_t*>(std::malloc(size + sizeof(std::max_align_t)));
    if (!p) return nullptr;
    *p = size;
    self->used_ += size;
    return reinterpret_cast<char*>(p) + sizeof(std::max_align_t);
  }
  static void Free(void* opaque, void* ptr) {
    if (!ptr) return;
    auto* self = static_cast<BrotliLayer*>(opaque);
    auto* p = reinterpret_cast<size_t*>(static_cast<char*>(ptr) - sizeof(std::max_align_t));
    self->used_ -= *p;
    std::free(p);
  }

  const size_t cap_;
  size_t used_ = 0;
  BrotliDecoderState* state_ = nullptr;
  bool started_ = false;
  bool ended_ = false;
};

// ---- zstd (libzstd) -------------------------------------------------------------

class ZstdLayer final : public Layer {
 public:
  explicit ZstdLayer(int max_window_log) {
    dctx_ = ZSTD_createDCtx();
    if (dctx_ && ZSTD_isError(ZSTD_DCtx_setParameter(dctx_, ZSTD_d_windowLogMax, max_window_log))) {
      ZSTD_freeDCtx(dctx_);
      dctx_ = nullptr;
    }
  }
  ~ZstdLayer() override { ZSTD_freeDCtx(dctx_); }
  bool ok() const { return dctx_ != nullptr; }

  Step Run(std::string_view* in, size_t max, std::string* out) override {
    size_t produced = 0;
    while (true) {
      if (in->empty() && !frame_open_) return Step::kNeedInput;
      size_t base = 0;
      char* dst = Grow(out, max - produced, &base);
      ZSTD_inBuffer ib{in->data(), in->size(), 0};
      ZSTD_outBuffer ob{dst, max - produced, 0};
      const size_t r = ZSTD_decompressStream(dctx_, &ob, &ib);
      in->remove_prefix(ib.pos);
      out->resize(base + ob.pos);
      produced += ob.pos;
      if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge) {
          return Fail(Bad(Coding::kZstd, "the frame's window is larger than allowed"));
        }
        return Fail(Bad(Coding::kZstd, std::string("corrupt data (") + ZSTD_getErrorName(r) + ")"));
      }
      frame_open_ = r != 0;
      if (produced == max) return Step::kMore;
      if (in->empty()) return Step::kNeedInput;  // output had room: all flushed
      if (ib.pos == 0 && ob.pos == 0) return Fail(Bad(Coding::kZstd, "no progress"));
    }
  }

  bool AtEnd() const override { return !frame_open_; }

 private:
  ZSTD_DCtx* dctx_ = nullptr;
  bool frame_open_ = false;
};

// ---- identity -------------------------------------------------------------------

class IdentityLayer final : public Layer {
 public:
  Step Run(std::string_view* in, size_t max, std::string* out) override {
    const size_t n = std::min(max, in->size());
    out->append(in->data(), n);
    in->remove_prefix(n);
    return n == max ? Step::kMore : Step::kNeedInput;
  }
  bool AtEnd() const override { return true; }
};

// ---- the chain ------------------------------------------------------------------

class Chain final : public ContentDecoder {
 public:
  explicit Chain(std::vector<std::unique_ptr<Layer>> layers) : layers_(std::move(layers)) {
    buf_.resize(layers_.size());
    pos_.resize(layers_.size());
  }

  void Feed(std::string_view in) override { Append(0, in); }

  DecodeStatus Read(size_t max, std::string* out) override {
    if (failed_) return DecodeStatus::kError;
    if (max == 0) {
      error_ = MakeError(ErrorCode::kInternal, "content decoder: Read with max 0");
      failed_ = true;
      return DecodeStatus::kError;
    }
    const size_t before = out->size();
    // Layers reserve `max` bytes of *out up front: keep that reasonable.
    const Step s = Pull(layers_.size() - 1, std::min(max, kMaxRead), out);
    bytes_out_ += out->size() - before;
    if (s == Step::kError) return DecodeStatus::kError;
    return s == Step::kMore ? DecodeStatus::kMore : DecodeStatus::kNeedInput;
  }

  Status Finish() override {
    if (failed_) return error_;
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (pos_[i] != buf_[i].size() || !layers_[i]->AtEnd()) {
        // Undecoded input, or a layer stopped mid-stream: the body was cut.
        error_ = MakeError(ErrorCode::kInvalidArgument, std::string(Name(i)) + ": truncated stream");
        failed_ = true;
        return error_;
      }
    }
    return {};
  }

  const Error& error() const override { return error_; }
  uint64_t bytes_out() const override { return bytes_out_; }

  void SetNames(std::vector<std::string_view> names) { names_ = std::move(names); }

 private:
  std::string_view Name(size_t i) const { return i < names_.size() ? names_[i] : "identity"; }

  void Append(size_t i, std::string_view in) {
    auto& b = buf_[i];
    if (pos_[i] == b.size()) {
      b.assign(in.data(), in.size());
      pos_[i] = 0;
    } else {
      b.erase(0, pos_[i]);
      pos_[i] = 0;
      b.append(in.data(), in.size());
    }
  }

  // Runs layer i, refilling its input from layer i-1, until it appended
  // `max` bytes (kMore) or nothing is left to decode (kNeedInput).
  Step Pull(size_t i, size_t max, std::string* out) {
    const size_t start = out->size();
    while (true) {
      std::string_view in(buf_[i]);
      in.remove_prefix(pos_[i]);
      const size_t had = in.size();
      const Step s = layers_[i]->Run(&in, max - (out->size() - start), out);
      pos_[i] += had - in.size();
      if (s == Step::kError) {
        error_ = layers_[i]->error();
        failed_ = true;
        return Step::kError;
      }
      if (s == Step::kMore || out->size() - start == max) return Step::kMore;
      if (i == 0) return Step::kNeedInput;
      // Layer i needs input: move a bounded piece of layer i-1's output in.
      auto& b = buf_[i];
      b.erase(0, pos_[i]);
      pos_[i] = 0;
      const size_t size_before = b.size();
      const Step up = Pull(i - 1, kInnerPiece, &b);
      if (up == Step::kError) return Step::kError;
      if (up == Step::kNeedInput && b.size() == size_before) return Step::kNeedInput;
    }
  }

  std::vector<std::unique_ptr<Layer>> layers_;  // decode order
  std::vector<std::string_view> names_;
  std::vector<std::string> buf_;  // pending input of each layer
  std::vector<size_t> pos_;
  Error error_;
  bool failed_ = false;
  uint64_t bytes_out_ = 0;
};

}  // namespace

Result<std::unique_ptr<ContentDecoder>> ContentDecoder::Create(const std::vector<Coding>& codings,
                                                               const DecoderOptions& options) {
  if (codings.size() > kMaxStackedCodings) {
    return MakeError(ErrorCode::kInvalidArgument, "too many stacked content-codings");
  }
  const int window_log = std::clamp(options.max_window_log, 10, 24);
  std::vector<std::unique_ptr<Layer>> layers;
  std::vector<std::string_view> names;
  for (auto it = codings.rbegin(); it != codings.rend(); ++it) {
    names.push_back(CodingName(*it));
    switch (*it) {
      case Coding::kGzip:
      case Coding::kDeflate:
        layers.push_back(std::make_unique<ZlibLayer>(*it));
        break;
      case Coding::kBrotli: {
        // The ring buffer grows by reallocation: old + new = 1.5 windows at peak.
        const size_t window = size_t{1} << window_log;
        auto b = std::make_unique<BrotliLayer>(window + window / 2 + (2u << 20));
        if (!b->ok()) return MakeError(ErrorCode::kUnavailable, "br: cannot create a decoder");
        layers.push_back(std::move(b));
        break;
      }
      case Coding::kZstd: {
        auto z = std::make_unique<ZstdLayer>(window_log);
        if (!z->ok()) return MakeError(ErrorCode::kUnavailable, "zstd: cannot create a decoder");
        layers.push_back(std::move(z));
        break;
      }
    }
  }
  if (layers.empty()) layers.push_back(std::make_unique<IdentityLayer>());
  auto chain = std::make_unique<Chain>(std::move(layers));
  chain->SetNames(std::move(names));
  return std::unique_ptr<ContentDecoder>(std::move(chain));
}

Result<std::string> DecodeAll(const std::vector<Coding>& codings, std::string_view body, size_t max_output,
                              const DecoderOptions& options) {
  auto dec = ContentDecoder::Create(codings, options);
  if (!dec.ok()) return dec.error();
  std::string out;
  (*dec)->Feed(body);
  while (true) {
    const size_t room = max_output - out.size();
    // Ask for one byte more than allowed, to tell "exactly max" from "more".
    const auto s = (*dec)->Read(std::min<size_t>(room, 256 * 1024 - 1) + 1, &out);
    if (s == DecodeStatus::kError) return (*dec)->error();
    if (out.size() > max_output) {
      return MakeError(ErrorCode::kTooLarge,
                       "decoded body larger than " + std::to_string(max_output) + " bytes");
    }
    if (s == DecodeStatus::kNeedInput) break;
  }
  auto fin = (*dec)->Finish();
  if (!fin.ok()) return fin.error();
  return out;
}

}  // namespace osb::secretsproxy
