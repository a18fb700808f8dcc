// The Slurm executor: a plan's pending runs become as few sbatch calls as possible (one
// array per stage, dataset, resources and dependency set, chunked under the cluster's
// MaxArraySize), chained with afterok dependencies; one squeue and one sacct call per poll
// keep the registry current; scancel cancels; preempted or timed-out jobs checkpoint,
// requeue and resume.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "orchestrator/registry.h"

namespace kdx {

struct SlurmOptions {
  int signal_lead_s = 120;  // USR1 this long before the time limit
  bool hold = false;        // sbatch --hold (benchmarks: submit, then cancel)
  double command_timeout_s = 60;
};

struct SlurmSubmitReport {
  int sbatch_calls = 0;
  int runs_submitted = 0;
  int runs_blocked = 0;  // upstream failed: CANCELLED instead
  std::vector<std::string> job_ids;
};

// Submits every PENDING run of `experiment` (all experiments when empty) that has no
// active attempt. Throws kdx::Error with sbatch's own message when a submission is refused.
// Throws kdx::Error when run directories under `dir` cannot be named in an sbatch script
// (checked before any run is registered, so a refused submit changes nothing).
void check_slurm_results_dir(const std::string& dir);

SlurmSubmitReport submit_slurm(Registry& reg, const std::string& experiment,
                               const SlurmOptions& options);

struct SlurmPollReport {
  int squeue_calls = 0, sacct_calls = 0;
  double slurm_seconds = 0;  // time spent waiting for Slurm's commands
  bool accounting = true;    // false when sacct failed: states came from squeue and exit files
};
// One squeue and one sacct call for all active Slurm attempts; ingests finished runs.
SlurmPollReport reconcile_slurm(Registry& reg, const SlurmOptions& options = {});

// One scancel call for the given runs' active jobs; the runs become CANCELLED.
void cancel_slurm(Registry& reg, const std::vector<RunRecord>& runs);

// Slurm job state (as squeue/sacct print it, e.g. "CANCELLED by 0") -> kdx run state.
std::string map_slurm_state(const std::string& raw);
// "123_[1-3,7]" -> {"123_1", "123_2", "123_3", "123_7"}; "123_4" -> {"123_4"}.
std::vector<std::string> expand_array_ids(const std::string& id);
// The cluster's MaxArraySize (scontrol show config); 1001 when it cannot be read.
int max_array_size(double timeout_s = 30);
// Quotes a string for a POSIX shell: 'it'\''s'.
std::string shell_quote(const std::string& s);
// Fills {{NAME}} fields; throws kdx::Error naming a field left unfilled.
std::string render_template(const std::string& text,
                            const std::map<std::string, std::string>& fields,
                            const std::string& template_name);

}  // namespace kdx
