// The communicator, kept out of the training loop (flashlight-style): the model side calls
// sync_gradients() / sync_parameters(); the backend behind this 2-method interface is
// chosen once at start-up (single process, Gloo over c10d, or NCCL in a CUDA build).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace kdx::distributed {

class Reducer {
 public:
  virtual ~Reducer() = default;
  // In place, summed over ranks.
  virtual void allreduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  // In place, every rank receives rank `root`'s values.
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root) = 0;
  int rank = 0, world = 1, local_rank = 0;
  std::string backend = "single";
  // Where the collectives' tensors must live: the rank's GPU for NCCL, else the CPU.
  torch::Device device = torch::kCPU;
};

std::unique_ptr<Reducer> make_single_process();

// Sums gradients over ranks in flat buckets of about `bucket_bytes` (one all-reduce per
// bucket, not per parameter). Parameters without a gradient count as zeros.
void sync_gradients(Reducer& reducer, const std::vector<torch::Tensor>& params,
                    size_t bucket_bytes = 8 << 20);
// Rank 0's parameters to every rank (start of training), in flat buckets like the gradients.
void sync_parameters(Reducer& reducer, const std::vector<torch::Tensor>& params,
                     size_t bucket_bytes = 8 << 20);
// Sums a few scalars over ranks (loss, token counts, metric counts).
std::vector<double> allreduce_scalars(Reducer& reducer, const std::vector<double>& values);

}  // namespace kdx::distributed
