#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>

#include "common/error.h"

namespace kdx::log {
namespace {
std::string g_program = "kdx";
}

spdlog::level::level_enum parse_level(const std::string& name) {
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warning" || name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  if (name == "off") return spdlog::level::off;
  throw Error("log level '" + name + "' is not one of: trace, debug, info, warning, error, off");
}

void init(const std::string& program, const std::string& level_option) {
  g_program = program;
  std::string level = level_option;
  if (level.empty())
    if (const char* env = std::getenv("KDX_LOG_LEVEL"); env && *env) level = env;
  auto lvl = parse_level(level.empty() ? "info" : level);
  // stderr without colour codes: worker logs end up in files that people grep.
  auto logger =
      std::make_shared<spdlog::logger>(program, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_level(lvl);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %-7l %n: %v");
  logger->flush_on(spdlog::level::trace);  // a killed process keeps every line it logged
  spdlog::set_default_logger(logger);
}

void set_rank(int rank, int world) {
  if (world <= 1) return;
  spdlog::default_logger()->set_pattern("%Y-%m-%d %H:%M:%S.%e %-7l %n rank " +
                                        std::to_string(rank) + "/" + std::to_string(world) +
                                        ": %v");
}

std::string level_name() {
  auto l = spdlog::default_logger()->level();
  switch (l) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::warn:
      return "warning";
    case spdlog::level::err:
      return "error";
    case spdlog::level::off:
      return "off";
    default:
      return "info";
  }
}

}  // namespace kdx::log
