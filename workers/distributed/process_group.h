// Choosing the reducer from the environment: Slurm (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, first host of SLURM_JOB_NODELIST) or torchrun-style variables (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). One rank: no communication at all.
// Several: rendezvous through c10d::TCPStore, then NCCL when the build has it and the
// rank's device is a GPU (set as the current device before this), else Gloo.
#pragma once

#include <memory>
#include <string>

#include "workers/distributed/reducer.h"

namespace kdx::distributed {

struct RankInfo {
  int rank = 0, world = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";  // slurm | torchrun | none
};

// Reads the variables; throws kdx::Error for inconsistent ones (rank >= world, bad port).
RankInfo rank_info_from_env();
// "node[01-03],gpu7" -> "node01": the first host of a Slurm node list.
std::string first_host(const std::string& nodelist);

// Connects (timeout from KDX_RENDEZVOUS_TIMEOUT seconds, default 60) and returns the reducer.
// Throws kdx::Error naming the address when the store cannot be reached in time.
std::unique_ptr<Reducer> make_reducer_from_env(const torch::Device& device = torch::kCPU);

}  // namespace kdx::distributed
