#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

namespace osb {

void InitLogging(std::string_view level) {
  auto logger = spdlog::stderr_color_mt("osb");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  spdlog::set_default_logger(logger);
  const auto parsed = spdlog::level::from_str(std::string(level));
  // from_str maps unknown names to "off"; only accept it when asked for.
  spdlog::set_level(parsed == spdlog::level::off && level != "off" ? spdlog::level::info
                                                                   : parsed);
}

}  // namespace osb
