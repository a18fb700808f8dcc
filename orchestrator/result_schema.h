// What a worker's result.json must be before kdx records it: the registry stores only
// results that every later command (status, show, report) can read. A result that fails
// the check makes its attempt FAILED with the reason; the registry keeps working.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace kdx {

// Empty when `result` is a valid result.json of run `run_id`, else what is wrong, e.g.
// "metrics.f1: must be a number between 0 and 1, got \"x\"".
std::string check_result(const nlohmann::json& result, const std::string& run_id);

// Reads and checks <run_dir>/result.json: the parsed value, or null with `error` set.
nlohmann::json read_result(const std::string& run_dir, const std::string& run_id,
                           std::string& error);

}  // namespace kdx
