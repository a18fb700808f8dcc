#include "workers/runtime/loss_scaler.h"

#include <algorithm>

namespace kdx::runtime {

bool unscale_gradients(const std::vector<torch::Tensor>& params, double scale) {
  torch::NoGradGuard g;
  const double inv = 1.0 / scale;
  // One flag tensor on the device, read once: no host sync per parameter.
  torch::Tensor bad;
  for (auto& p : params) {
    if (!p.grad().defined()) continue;
    auto& grad = p.mutable_grad();
    grad.mul_(inv);
    auto b = grad.isfinite().logical_not().any();
    bad = bad.defined() ? bad.logical_or(b) : b;
  }
  return !bad.defined() || !bad.item<bool>();
}

void update_scale(training::LossScalerState& s, bool found_inf, const LossScalerOptions& o) {
  if (found_inf) {
    s.scale = std::max(o.min_scale, s.scale * o.backoff_factor);
    s.good_steps = 0;
    ++s.skipped_steps;
    return;
  }
  if (++s.good_steps >= o.growth_interval) {
    s.scale = std::min(o.max_scale, s.scale * o.growth_factor);
    s.good_steps = 0;
  }
}

}  // namespace kdx::runtime
