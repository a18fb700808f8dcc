// Running an external program (sbatch, squeue, sacct, scancel, scontrol) with its output
// captured: argv only, never a shell, so no value can be interpreted as shell code.
#pragma once

#include <string>
#include <vector>

namespace kdx {

struct CommandOutput {
  int exit_code = -1;  // 127: not found; 124: timed out
  std::string out, err;
  double seconds = 0;
};

CommandOutput run_program(const std::vector<std::string>& argv, double timeout_s = 60,
                          const std::string& input = "");
// True when `name` is an executable on PATH.
bool on_path(const std::string& name);

}  // namespace kdx
