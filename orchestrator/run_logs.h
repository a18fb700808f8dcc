// Where a run's logs are, for `kdx logs` and `kdx show`: a local attempt writes both of
// its streams to logs/attempt-N.log; a Slurm array task writes logs/slurm-<job>_<index>.out,
// the job script's own file, which a requeued task appends to.
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "orchestrator/registry.h"

namespace kdx {

// The attempt's log (the worker's standard output and error).
std::string attempt_log_path(const RunRecord& run, const AttemptRecord& attempt);

// The lines of one rank. Workers of a data-parallel run tag every line "rank R/W"; a line
// without a tag (a single-rank run, the job script's own lines) belongs to every rank.
std::string lines_of_rank(const std::string& text, int rank);

struct FollowOptions {
  int rank = -1;        // -1 = every line
  bool follow = false;  // keep printing appended lines
  double poll_s = 0.5;
  std::function<bool()> still_running;  // follow until this says false (then print the rest)
};

// Prints `path` (and, following, whatever is appended). Throws kdx::Error when the file
// does not exist and the attempt is over.
void print_log(std::ostream& out, const std::string& path, const FollowOptions& options);

}  // namespace kdx
