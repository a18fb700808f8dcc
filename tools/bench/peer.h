// The peer side of a benchmark: a program (the Python equivalent, or a kdx tool) run as a
// process that reports its own timing as one JSON object on its output.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace kdx::bench {

// Runs `command` through the shell and parses the JSON object in what it printed (from the
// first '{'). Not an object (the command failed, or printed something else): returns a
// non-object and leaves the whole output in `output` for the error message.
inline nlohmann::json run_peer(const std::string& command, std::string& output) {
  output.clear();
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return nlohmann::json();
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) output += buf;
  if (::pclose(p) != 0) return nlohmann::json();
  auto brace = output.find('{');
  if (brace == std::string::npos) return nlohmann::json();
  return nlohmann::json::parse(output.substr(brace), nullptr, false);
}

}  // namespace kdx::bench
