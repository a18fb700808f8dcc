// Registering a plan: new runs get a PENDING row holding their run.json, in one registry
// transaction; runs that exist already are left alone (COMPLETED ones are skipped). The
// experiment's runs directory is created (and proven writable) here; each run's own
// directory and run.json are written when an executor launches it (materialize_run), so
// submitting 10,000 runs does not first create 10,000 directories.
#pragma once

#include <string>

#include "orchestrator/planner.h"
#include "orchestrator/registry.h"
#include "orchestrator/spec.h"

namespace kdx {

struct SubmitSummary {
  int created = 0;
  int completed = 0;  // already COMPLETED: skipped
  int recorded = 0;   // of those, recorded now from a result.json left in their run directory
  int active = 0;     // already PENDING or RUNNING
  int failed = 0;     // FAILED/TIMEOUT/CANCELLED...: left for `kdx resubmit --failed`
};

// `executor` is recorded on the new runs ("local" or "slurm").
SubmitSummary register_plan(Registry& reg, const Plan& plan, const Spec& spec,
                            const std::string& spec_text, const std::string& executor);

// Creates the run directory (and logs/) and writes run.json from the registry row.
// durable=false skips the per-file fsync; the caller then calls sync_filesystem() once.
// Throws kdx::Error when the run directory or its logs/ is a symbolic link.
void check_run_dir(const std::string& run_dir);

void materialize_run(const RunRecord& run, bool durable = true);

// run.json with the worker section (command, env, setup) the executor needs.
nlohmann::json full_run_json(const PlannedRun& run, const Spec& spec);

}  // namespace kdx
