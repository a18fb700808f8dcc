// What `kdx submit --dry-run` prints: the stages, runs and resources of a plan.
#pragma once

#include <string>

#include "orchestrator/planner.h"

namespace kdx {

std::string render_plan(const Plan& plan, const std::string& data_root);

}  // namespace kdx
