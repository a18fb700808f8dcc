#include "workers/training/objective.h"

#include "common/error.h"
#include "workers/data/encode.h"

namespace kdx::training {

bool known_kd_loss(const std::string& name) {
  return name == "mse" || name == "mse_prob" || name == "kl" || name == "hard";
}

LossTerms compute_objective(const Objective& o, const torch::Tensor& logits,
                            const torch::Tensor& teacher, const torch::Tensor& tags,
                            const torch::Tensor& kd_cells_mask, int classes, double ce_cells,
                            double kd_cells, double dice_units) {
  LossTerms out;
  // The losses and KD terms in fp32 whatever precision the forward ran in (autocast).
  auto flat = logits.reshape({-1, classes}).to(torch::kFloat32);
  auto flat_tags = tags.reshape({-1});
  const bool dice = o.dice_weight != 0;
  if (ce_cells > 0) {
    auto log_p = torch::log_softmax(flat, -1);
    auto nll = torch::nll_loss(log_p, flat_tags, {}, at::Reduction::Sum, data::kIgnoreTag);
    if (o.label_smoothing > 0) {
      auto labelled = flat_tags.ne(data::kIgnoreTag).to(log_p.dtype());
      auto uniform = -(log_p.mean(-1) * labelled).sum();
      nll = (1 - o.label_smoothing) * nll + o.label_smoothing * uniform;
    }
    out.ce = nll / ce_cells;
  } else {
    out.ce = flat.sum() * 0;  // keeps the graph (and so the all-reduce) uniform
  }
  out.total = o.ce_weight * out.ce;
  if (dice) {
    // [B, T, cols, classes] probabilities; gold one-hot only on labelled cells.
    const auto B = logits.size(0), T = logits.size(1), cols = tags.size(2);
    auto p = torch::softmax(flat, -1).view({B, T, cols, classes});
    auto labelled = tags.ne(data::kIgnoreTag);  // [B, T, cols]
    auto m = labelled.unsqueeze(-1).to(p.dtype());
    auto y = torch::one_hot(tags.clamp_min(0), classes).to(p.dtype()) * m;
    p = p * m;
    auto num = 2 * (p * y).sum(1) + 1;      // [B, cols, classes]
    auto den = (p * p + y * y).sum(1) + 1;  // y * y == y
    auto weight = torch::ones({classes}, p.options());
    weight[0] = 0;
    auto mean_dice = (num / den * weight).sum(-1) / classes;  // [B, cols]
    // A window-column counts when it has a labelled cell (unlabelled windows have none).
    auto unit = labelled.any(1).to(p.dtype());  // [B, cols]
    out.dice = dice_units > 0 ? ((1 - mean_dice) * unit).sum() / dice_units : flat.sum() * 0;
    out.total = out.total + o.dice_weight * out.dice;
  }
  if (o.kd_weight == 0 || !teacher.defined()) return out;
  if (!known_kd_loss(o.kd_loss)) throw Error("unknown kd_loss '" + o.kd_loss + "'");
  auto s = flat;
  auto t = teacher.reshape({-1, classes}).to(torch::kFloat32);
  auto m = kd_cells_mask.reshape({-1}).to(s.dtype());
  torch::Tensor per_cell;  // [cells]
  if (o.kd_loss == "kl") {
    double T = o.temperature;
    auto log_s = torch::log_softmax(s / T, -1);
    auto log_p = torch::log_softmax(t / T, -1);
    per_cell = (log_p.exp() * (log_p - log_s)).sum(-1) * (T * T);
  } else if (o.kd_loss == "hard") {
    // Self-training: CE against the teacher's most likely tag, the soft targets thrown away.
    auto target = t.argmax(-1);
    per_cell = -torch::log_softmax(s, -1).gather(1, target.unsqueeze(1)).squeeze(1);
  } else if (o.kd_loss == "mse_prob") {
    double T = o.temperature;
    per_cell = (torch::softmax(s / T, -1) - torch::softmax(t / T, -1)).pow(2).mean(-1) * (T * T);
  } else {
    per_cell = (s - t).pow(2).mean(-1);
  }
  out.kd = kd_cells > 0 ? (per_cell * m).sum() / kd_cells : per_cell.sum() * 0;
  out.total = out.total + o.kd_weight * out.kd;
  return out;
}

}  // namespace kdx::training
