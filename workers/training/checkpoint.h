// Weights and resumable checkpoints. Weights are safetensors (name -> float32 tensor), so
// they load whatever LibTorch version wrote them; a checkpoint directory holds
// model-<step>.safetensors, optimizer-<step>.pt and state.json, and state.json is renamed
// into place last: a checkpoint exists whole or not at all.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

#include "workers/training/training_state.h"

namespace kdx::training {

void save_weights(torch::nn::Module& module, const std::string& path);
// Throws kdx::Error naming the file for a missing, corrupt or mismatched tensor.
void load_weights(torch::nn::Module& module, const std::string& path);

void save_checkpoint(const std::string& dir, torch::nn::Module& module,
                     torch::optim::Optimizer& optimizer, const TrainingState& state);
// Empty when the directory holds no checkpoint; throws when it holds a broken one. The
// optimizer state is mapped onto `device` (a checkpoint written on a GPU resumes on a CPU,
// and rank r gets its own device, not the one rank 0 saved from).
std::optional<TrainingState> load_checkpoint(const std::string& dir, torch::nn::Module& module,
                                             torch::optim::Optimizer& optimizer,
                                             torch::Device device = torch::kCPU);

}  // namespace kdx::training
