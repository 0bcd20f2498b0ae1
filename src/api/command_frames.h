// Decoding of what a client sends on a command WebSocket (docs/api.md,
// "Command WebSocket frames") and of the command fields of POST .../commands.
// Strict: unknown fields and types, out-of-range sizes and signals are
// kInvalidArgument naming the field; messages never echo the data. No I/O,
// no Beast: fuzzed by fuzz/command_frame_fuzz.cpp.
#pragma once

#include <optional>
#include <string>

#include "common/result.h"
#include "controlplane/command_types.h"

namespace osb::api {

// One client message on a command WebSocket, decoded.
struct ClientFrame {
  enum Kind { kStart, kStdin, kEof, kResize, kSignal } kind = kStdin;
  controlplane::CommandSpec start;  // kStart
  std::string data;                 // kStdin
  int cols = 0, rows = 0;           // kResize
  int signal = 0;                   // kSignal
};
// kInvalidArgument naming what is wrong (the message is sent back to the
// client in the close frame / error message; never echoes data).
Result<ClientFrame> ParseClientFrame(bool binary, const std::string& data);
// Parses the JSON fields of a start message / POST .../commands body.
Result<controlplane::CommandSpec> ParseCommandSpec(const std::string& json, bool with_type);
// A signal by number (1-64) or name ("TERM", "SIGTERM", …).
std::optional<int> ParseSignal(const std::string& text);

}  // namespace osb::api
