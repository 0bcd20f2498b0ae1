#include "secretsproxy/content_encoder.h"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>

namespace osb::secretsproxy {
namespace {

constexpr size_t kOutStep = 16 * 1024;

enum class Op { kWrite, kFlush, kFinish };

Error Fault(Coding c, std::string_view why) {
  return MakeError(ErrorCode::kInternal, std::string(CodingName(c)) + " encoder: " + std::string(why));
}

class Layer {
 public:
  virtual ~Layer() = default;
  virtual Status Run(std::string_view in, Op op, std::string* out) = 0;
};

class ZlibLayer final : public Layer {
 public:
  ZlibLayer(Coding coding, int level) : coding_(coding) {
    std::memset(&zs_, 0, sizeof(zs_));
    const int bits = coding == Coding::kGzip ? 16 + 15 : 15;
    ok_ = deflateInit2(&zs_, std::clamp(level, 1, 9), Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~ZlibLayer() override {
    if (ok_) deflateEnd(&zs_);
  }
  bool ok() const { return ok_; }

  Status Run(std::string_view in, Op op, std::string* out) override {
    const int flush = op == Op::kWrite ? Z_NO_FLUSH : op == Op::kFlush ? Z_SYNC_FLUSH : Z_FINISH;
    while (true) {
      const size_t take = std::min<size_t>(in.size(), 1u << 30);
      zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      zs_.avail_in = static_cast<uInt>(take);
      const size_t base = out->size();
      out->resize(base + kOutStep);
      zs_.next_out = reinterpret_cast<Bytef*>(out->data() + base);
      zs_.avail_out = static_cast<uInt>(kOutStep);
      const int rc = deflate(&zs_, in.size() > take ? Z_NO_FLUSH : flush);
      out->resize(base + (kOutStep - zs_.avail_out));
      in.remove_prefix(take - zs_.avail_in);
      if (rc == Z_STREAM_END) return {};
      if (rc != Z_OK && rc != Z_BUF_ERROR) return Fault(coding_, zs_.msg ? zs_.msg : "error");
      // Done when all input is in and deflate had room left over.
      if (in.empty() && zs_.avail_out != 0 && op != Op::kFinish) return {};
    }
  }

 private:
  const Coding coding_;
  z_stream zs_{};
  bool ok_ = false;
};

class BrotliLayer final : public Layer {
 public:
  BrotliLayer(int quality, int window_log) {
    state_ = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
    if (state_) {
      BrotliEncoderSetParameter(state_, BROTLI_PARAM_QUALITY, static_cast<uint32_t>(std::clamp(quality, 0, 11)));
      BrotliEncoderSetParameter(state_, BROTLI_PARAM_LGWIN, static_cast<uint32_t>(std::clamp(window_log, 10, 24)));
    }
  }
  ~BrotliLayer() override {
    if (state_) BrotliEncoderDestroyInstance(state_);
  }
  bool ok() const { return state_ != nullptr; }

  Status Run(std::string_view in, Op op, std::string* out) override {
    const auto bop = op == Op::kWrite   ? BROTLI_OPERATION_PROCESS
                     : op == Op::kFlush ? BROTLI_OPERATION_FLUSH
                                        : BROTLI_OPERATION_FINISH;
    size_t avail_in = in.size();
    auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
    while (true) {
      const size_t base = out->size();
      out->resize(base + kOutStep);
      size_t avail_out = kOutStep;
      auto* next_out = reinterpret_cast<uint8_t*>(out->data() + base);
      if (!BrotliEncoderCompressStream(state_, bop, &avail_in, &next_in, &avail_out, &next_out, nullptr)) {
        out->resize(base);
        return Fault(Coding::kBrotli, "error");
      }
      out->resize(base + (kOutStep - avail_out));
      if (avail_in == 0 && !BrotliEncoderHasMoreOutput(state_)) {
        if (op != Op::kFinish || BrotliEncoderIsFinished(state_)) return {};
      }
    }
  }

 private:
  BrotliEncoderState* state_ = nullptr;
};

class ZstdLayer final : public Layer {
 public:
  explicit ZstdLayer(int level) {
    cctx_ = ZSTD_createCCtx();
    if (cctx_) ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
  }
  ~ZstdLayer() override { ZSTD_freeCCtx(cctx_); }
  bool ok() const { return cctx_ != nullptr; }

  Status Run(std::string_view in, Op op, std::string* out) override {
    const auto mode = op == Op::kWrite ? ZSTD_e_continue : op == Op::kFlush ? ZSTD_e_flush : ZSTD_e_end;
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    while (true) {
      const size_t base = out->size();
      out->resize(base + kOutStep);
      ZSTD_outBuffer ob{out->data() + base, kOutStep, 0};
      const size_t r = ZSTD_compressStream2(cctx_, &ob, &ib, mode);
      out->resize(base + ob.pos);
      if (ZSTD_isError(r)) return Fault(Coding::kZstd, ZSTD_getErrorName(r));
      if (mode == ZSTD_e_continue ? ib.pos == ib.size : r == 0) return {};
    }
  }

 private:
  ZSTD_CCtx* cctx_ = nullptr;
};

class Chain final : public ContentEncoder {
 public:
  explicit Chain(std::vector<std::unique_ptr<Layer>> layers) : layers_(std::move(layers)) {}

  Status Write(std::string_view in, std::string* out) override { return Run(in, Op::kWrite, out); }
  Status Flush(std::string* out) override { return Run({}, Op::kFlush, out); }
  Status Finish(std::string* out) override {
    if (finished_) return MakeError(ErrorCode::kInternal, "content encoder: already finished");
    finished_ = true;
    return Run({}, Op::kFinish, out);
  }

 private:
  // Layer i's output is layer i+1's input; the same op runs down the chain
  // so a flush or finish reaches the outermost coding.
  Status Run(std::string_view in, Op op, std::string* out) {
    if (failed_) return MakeError(ErrorCode::kInternal, "content encoder: failed before");
    if (finished_ && op != Op::kFinish) return MakeError(ErrorCode::kInternal, "content encoder: finished");
    if (layers_.empty()) {
      out->append(in.data(), in.size());
      return {};
    }
    std::string_view cur = in;
    std::string a, b;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const bool last = i + 1 == layers_.size();
      b.clear();
      auto s = layers_[i]->Run(cur, op, last ? out : &b);
      if (!s.ok()) {
        failed_ = true;
        return s;
      }
      if (!last) {
        a.swap(b);
        cur = a;
      }
    }
    return {};
  }

  std::vector<std::unique_ptr<Layer>> layers_;
  bool finished_ = false;
  bool failed_ = false;
};

}  // namespace

Result<std::unique_ptr<ContentEncoder>> ContentEncoder::Create(const std::vector<Coding>& codings,
                                                               const EncoderOptions& options) {
  if (codings.size() > kMaxStackedCodings) {
    return MakeError(ErrorCode::kInvalidArgument, "too many stacked content-codings");
  }
  std::vector<std::unique_ptr<Layer>> layers;
  for (Coding c : codings) {
    switch (c) {
      case Coding::kGzip:
      case Coding::kDeflate: {
        auto z = std::make_unique<ZlibLayer>(c, options.zlib_level);
        if (!z->ok()) return Fault(c, "cannot create");
        layers.push_back(std::move(z));
        break;
      }
      case Coding::kBrotli: {
        auto b = std::make_unique<BrotliLayer>(options.br_quality, options.br_window_log);
        if (!b->ok()) return Fault(c, "cannot create");
        layers.push_back(std::move(b));
        break;
      }
      case Coding::kZstd: {
        auto z = std::make_unique<ZstdLayer>(options.zstd_level);
        if (!z->ok()) return Fault(c, "cannot create");
        layers.push_back(std::move(z));
        break;
      }
    }
  }
  return std::unique_ptr<ContentEncoder>(std::make_unique<Chain>(std::move(layers)));
}

Result<std::string> EncodeAll(const std::vector<Coding>& codings, std::string_view body,
                              const EncoderOptions& options) {
  auto enc = ContentEncoder::Create(codings, options);
  if (!enc.ok()) return enc.error();
  std::string out;
  auto s = (*enc)->Write(body, &out);
  if (s.ok()) s = (*enc)->Finish(&out);
  if (!s.ok()) return s.error();
  return out;
}

}  // namespace osb::secretsproxy
