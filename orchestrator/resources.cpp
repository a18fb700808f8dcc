#include "orchestrator/resources.h"

#include <cctype>
#include <cstdlib>

#include "common/strings.h"

namespace kdx {
namespace {

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

long parse_time_limit(const std::string& s) {
  std::string rest = s;
  long days = 0;
  bool has_days = false;
  auto dash = s.find('-');
  if (dash != std::string::npos) {
    std::string d = s.substr(0, dash);
    if (!all_digits(d)) return -1;
    days = std::atol(d.c_str());
    rest = s.substr(dash + 1);
    has_days = true;
  }
  auto parts = split(rest, ':');
  for (auto& p : parts)
    if (!all_digits(p)) return -1;
  long v[3] = {0, 0, 0};
  for (size_t i = 0; i < parts.size() && i < 3; ++i) v[i] = std::atol(parts[i].c_str());
  long secs;
  if (parts.size() > 3) return -1;
  if (has_days) {  // D-HH, D-HH:MM, D-HH:MM:SS
    secs = v[0] * 3600 + (parts.size() > 1 ? v[1] * 60 : 0) + (parts.size() > 2 ? v[2] : 0);
  } else if (parts.size() == 1) {  // MM
    secs = v[0] * 60;
  } else if (parts.size() == 2) {  // MM:SS
    secs = v[0] * 60 + v[1];
  } else {  // HH:MM:SS
    secs = v[0] * 3600 + v[1] * 60 + v[2];
  }
  return days * 86400 + secs;
}

long parse_mem_mb(const std::string& s) {
  if (s.empty()) return -1;
  std::string num = s;
  long mult = 1;
  char last = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
  if (!std::isdigit(static_cast<unsigned char>(last))) {
    num = s.substr(0, s.size() - 1);
    if (last == 'K')
      mult = -1024;
    else if (last == 'M')
      mult = 1;
    else if (last == 'G')
      mult = 1024;
    else if (last == 'T')
      mult = 1024 * 1024;
    else
      return -1;
  }
  if (!all_digits(num)) return -1;
  long n = std::atol(num.c_str());
  if (mult < 0) return (n + 1023) / 1024;
  return n * mult;
}

bool valid_slurm_name(const std::string& s) {
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
          c == ','))
      return false;
  return true;
}

nlohmann::json to_json(const Resources& r) {
  return {{"nodes", r.nodes},
          {"gpus_per_node", r.gpus_per_node},
          {"cpus", r.cpus},
          {"mem", r.mem},
          {"time", r.time},
          {"partition", r.partition},
          {"account", r.account},
          {"qos", r.qos},
          {"array_throttle", r.array_throttle}};
}

}  // namespace kdx
