#include "orchestrator/commands.h"

namespace kdx {

void add_worker_side_commands(CLI::App&) {}

int run_worker_side_command(CLI::App&, const std::string&) { return 0; }

}  // namespace kdx
