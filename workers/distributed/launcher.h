// `kdx-worker --nproc N`: N ranks on this machine, as torchrun starts them: each a copy of
// this program with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set. If one
// rank fails, the others are stopped; SIGTERM/SIGUSR1 are forwarded so every rank checkpoints.
#pragma once

namespace kdx::distributed {

// Returns the exit code of the group (0 when every rank succeeded).
int launch_local_ranks(int argc, char** argv, int nproc);

// A TCP port that was free a moment ago on 127.0.0.1.
int free_port();

}  // namespace kdx::distributed
