#include "orchestrator/resources.h"

#include <cctype>

namespace kdx {
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
