// Grid expansion: the students section of a Spec -> the list of parameter points,
// in a deterministic order (grid axes in file order, last axis fastest).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "orchestrator/spec.h"

namespace kdx {

// product(grid) x zip x random samples, minus `exclude`, plus `include`; every point is
// `fixed` deep-merged with its values. Duplicate points are kept once. Throws kdx::Error
// when nothing is left.
constexpr long kMaxGridRuns = 1000000;

std::vector<nlohmann::json> expand_grid(const StudentSpec& students, const std::string& file);

// Whether `point` matches an exclude condition (every key equal, or in the list).
bool matches(const nlohmann::json& point, const nlohmann::json& condition);

// Draws `random.samples` points; the same seed gives the same points on every platform
// (mt19937_64 and our own mapping to [0, 1), not the implementation-defined std distributions).
std::vector<nlohmann::json> sample_random(const RandomSpec& random);

}  // namespace kdx
