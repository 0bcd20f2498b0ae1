// Entry point of the `oc` CLI. src/cmd/oc_main.cpp calls RunOc with the
// process streams; tests call it with string streams and a fake environment.
//
// Returns the process exit code (see exit_codes.h). Never throws.
#pragma once

#include <iostream>

#include "cli/config.h"

namespace osb::cli {

struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  EnvLookup env;
};

int RunOc(int argc, const char* const* argv, const Io& io);

// The process: std::cin/cout/cerr and the real environment.
int RunOc(int argc, const char* const* argv);

}  // namespace osb::cli
