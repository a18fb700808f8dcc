// The parameters each stage accepts, with their types and ranges: the one table that the
// spec parser (unknown key / wrong type / out of range), the planner's normalisation and
// the worker (reading run.json) all use, so a value kdx accepts is one the worker can run.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kdx {

// IntList: a list of integers, each within [min, max] (possibly empty). Duration: a Slurm
// time limit string (min/max in seconds); Memory: a Slurm memory size (min/max in MB).
enum class ParamType { Int, Float, Bool, String, Object, IntList, Duration, Memory };

struct ParamDef {
  std::string name;
  ParamType type;
  std::vector<std::string> choices;  // String: allowed values, empty = any
  std::vector<ParamDef> fields;      // Object: its keys
  std::string help;
  double min = -1e300, max = 1e300;  // Int, Float, IntList's items: the allowed closed range
};

const std::vector<ParamDef>& teacher_params();
const std::vector<ParamDef>& student_params();
const std::vector<ParamDef>& logits_params();
const std::vector<ParamDef>& pretrain_params();
// A stage's `resources:` (nodes, gpus_per_node, cpus, mem, time, partition, account, qos,
// array_throttle): the values an executor pastes into #SBATCH lines, so each is range-checked.
const std::vector<ParamDef>& resource_params();
// Every stage, in DAG order: pretrain, teacher, logits, student_kd, student_finetune, student.
const std::vector<std::string>& stage_names();
// The student stages (one-phase, and the two phases of two-phase distillation).
bool is_student_stage(const std::string& stage);
// The table of a stage (one of stage_names()); throws kdx::Error otherwise.
const std::vector<ParamDef>& params_of_stage(const std::string& stage);

// Every key of `params` known, typed and in range (nested objects too); throws kdx::Error
// "<where>: params.<key>: <message>" for the first that is not. Unknown keys are errors.
void validate_params(const std::vector<ParamDef>& defs, const nlohmann::json& params,
                     const std::string& where);

// Looks up a dotted path ("loss.kd_weight"); nullptr when unknown.
const ParamDef* find_param(const std::vector<ParamDef>& defs, const std::string& dotted);
// Empty when `value` fits `def` (type, choices, range), else a message such as "expected an
// integer, got a list" or "must be between 1 and 4096, got 0".
std::string check_param(const ParamDef& def, const nlohmann::json& value);
std::string type_name(ParamType t);
std::string format_number(double x);
std::string format_duration_limit(long long seconds);  // "0:00:01", "1-02:03:04"
std::string format_mem_mb(
    long long mb);  // "64M", "4G", "64T"  // shortest round-trip-ish form for messages
std::string known_names(const std::vector<ParamDef>& defs);

// Slurm time formats: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, as seconds; -1 when
// the text is not one of them, -2 when a field is too large (computed without wrapping).
long long parse_time_limit(const std::string& s);
// 500M, 4G, 1T, 16K (rounded up to 1M), 1024 (MB), as megabytes; -1 when not a size, -2
// when too large.
long long parse_mem_mb(const std::string& s);

// Numbers normalised so that 1, 1.0 and 1e0 hash alike: integral floats become integers.
nlohmann::json normalize_numbers(const nlohmann::json& j);

// Deep merge of `patch` into `base` (objects merge key by key, everything else replaces).
void deep_merge(nlohmann::json& base, const nlohmann::json& patch);
// Get/set a dotted path inside an object; get returns nullptr when absent.
const nlohmann::json* get_path(const nlohmann::json& j, const std::string& dotted);
void set_path(nlohmann::json& j, const std::string& dotted, const nlohmann::json& value);

}  // namespace kdx
