// Dynamic loss scaling for fp16 training (as torch.cuda.amp.GradScaler does it): the loss is
// multiplied by `scale` before backward; gradients are unscaled before clipping; a step whose
// gradients hold an inf or NaN is skipped and the scale halves; after `growth_interval`
// clean steps it doubles. Its state is part of TrainingState, so a resume continues the same
// scale.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "workers/training/training_state.h"

namespace kdx::runtime {

struct LossScalerOptions {
  double growth_factor = 2.0, backoff_factor = 0.5;
  int growth_interval = 2000;
  double min_scale = 1.0 / 65536, max_scale = 16777216.0;
};

// Divides every gradient by state.scale in place; true when all of them are finite.
bool unscale_gradients(const std::vector<torch::Tensor>& params, double scale);
// After a step: grow after enough clean steps, back off (and count a skip) on an overflow.
void update_scale(training::LossScalerState& state, bool found_inf,
                  const LossScalerOptions& options = {});

}  // namespace kdx::runtime
