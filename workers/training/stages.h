// The four stages a run.json can ask for. Each reads the run's inputs, trains or
// computes, and (rank 0 only) writes its artefacts and, last, result.json.
#pragma once

#include "workers/distributed/reducer.h"
#include "workers/training/run_spec.h"

namespace kdx::training {

struct StageOptions {
  int latency_runs = 20;
  bool measure_latency = true;
  bool quiet = false;
  int max_steps = 0;  // tests: stop early
};

void run_pretrain(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& options);
void run_teacher(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& options);
void run_logits(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& options);
void run_student(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& options);
void run_stage(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& options);

}  // namespace kdx::training
