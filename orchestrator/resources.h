// Resources one run of a stage asks of an executor; validated once at parse time so
// that executors can paste them into scripts without further checks.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/params.h"

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

// Their table (types, ranges) and the time/memory parsers are common/params.h's
// resource_params(), parse_time_limit() and parse_mem_mb().
// Partition/account/qos names: letters, digits, '_', '-', '.', ',' only.
bool valid_slurm_name(const std::string& s);

nlohmann::json to_json(const Resources& r);

}  // namespace kdx
