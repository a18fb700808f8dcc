// Registering a plan: new runs get their directory and run.json, and a PENDING row, in one
// registry transaction; runs that exist already are left alone (COMPLETED ones are skipped).
#pragma once

#include <string>

#include "orchestrator/planner.h"
#include "orchestrator/registry.h"
#include "orchestrator/spec.h"

namespace kdx {

struct SubmitSummary {
  int created = 0;
  int completed = 0;  // already COMPLETED: skipped
  int active = 0;     // already PENDING or RUNNING
  int failed = 0;     // FAILED/TIMEOUT/CANCELLED...: left for `kdx resubmit --failed`
};

// `executor` is recorded on the new runs ("local" or "slurm").
SubmitSummary register_plan(Registry& reg, const Plan& plan, const Spec& spec,
                            const std::string& spec_text, const std::string& executor);

// run.json with the worker section (command, env, setup) the executor needs.
nlohmann::json full_run_json(const PlannedRun& run, const Spec& spec);

}  // namespace kdx
