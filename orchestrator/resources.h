// Resources one run of a stage asks of an executor; validated once at parse time so
// that executors can paste them into scripts without further checks.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kdx {

struct Resources {
  int nodes = 1;
  int gpus_per_node = 0;
  int cpus = 1;  // per task
  std::string mem = "2G";
  std::string time = "1:00:00";
  std::string partition;
  std::string account;
  std::string qos;
  int array_throttle = 0;  // 0 = no `%` limit
};

// Slurm time formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. Returns seconds, -1 if
// invalid.
long parse_time_limit(const std::string& s);
// 500M, 4G, 1T, 1024 (MB). Returns megabytes, -1 if invalid.
long parse_mem_mb(const std::string& s);
// Partition/account/qos names: letters, digits, '_', '-', '.', ',' only.
bool valid_slurm_name(const std::string& s);

nlohmann::json to_json(const Resources& r);

}  // namespace kdx
