// The stages a run.json can ask for, one file each under stages/. Each reads the run's
// inputs, trains or computes on the execution's device, and (rank 0 only) writes its
// artefacts and, last, result.json. A new stage is one file there plus one entry in
// stage_table() and one in the orchestrator's planner.
#pragma once

#include <string>
#include <vector>

#include "workers/distributed/reducer.h"
#include "workers/runtime/execution.h"
#include "workers/training/run_spec.h"

namespace kdx::training {

struct StageOptions {
  int latency_runs = 20;
  bool measure_latency = true;
  bool quiet = false;
  int max_steps = 0;        // tests: stop early
  runtime::Execution exec;  // device and precision, resolved once per rank
};

using StageFn = void (*)(const RunSpec& spec, distributed::Reducer& reducer,
                         const StageOptions& options);

void run_pretrain(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& options);
void run_teacher(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& options);
void run_logits(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& options);
void run_student(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& options);
void run_student_kd(const RunSpec& spec, distributed::Reducer& reducer,
                    const StageOptions& options);
void run_student_finetune(const RunSpec& spec, distributed::Reducer& reducer,
                          const StageOptions& options);

// Stage name -> its function, in DAG order.
const std::vector<std::pair<std::string, StageFn>>& stage_table();
// Creates the run directory and runs spec.stage; throws kdx::Error for an unknown stage.
void run_stage(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& options);

}  // namespace kdx::training
