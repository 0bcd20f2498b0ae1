// Command WebSocket client messages (api/command_frames.h): any bytes as a
// text or binary message. Invariants: no crash; whatever is accepted is in
// range (sizes 1-1000, signals 1-64, timeout 0-86400, cwd absolute or empty).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/command_frames.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool binary = data[0] & 1;
  const std::string msg(reinterpret_cast<const char*>(data + 1), size - 1);
  auto f = osb::api::ParseClientFrame(binary, msg);
  if (!f) return 0;
  using K = osb::api::ClientFrame;
  if (binary && (f->kind != K::kStdin || f->data != msg.substr(1))) std::abort();
  if (f->kind == K::kResize && (f->cols < 1 || f->cols > 1000 || f->rows < 1 || f->rows > 1000)) std::abort();
  if (f->kind == K::kSignal && (f->signal < 1 || f->signal > 64)) std::abort();
  if (f->kind == K::kStart) {
    const auto& s = f->start;
    if (s.cols < 1 || s.cols > 1000 || s.rows < 1 || s.rows > 1000) std::abort();
    if (s.timeout_sec < 0 || s.timeout_sec > 86400) std::abort();
    if (!s.cwd.empty() && s.cwd.front() != '/') std::abort();
  }
  return 0;
}
