#include "workers/training/tagging_task.h"

#include "common/error.h"
#include "workers/evaluation/predict.h"

namespace kdx::training {

TaggingTask::TaggingTask(models::Tagger tagger, TrainData data, Objective objective,
                         runtime::Execution exec)
    : tagger_(std::move(tagger)), data_(data), objective_(std::move(objective)), exec_(exec) {
  if (objective_.kd_weight != 0 && !data_.teacher)
    throw Error("kd_weight is " + std::to_string(objective_.kd_weight) +
                " but no teacher logits cache was given");
}

long TaggingTask::tokens(size_t example) const {
  return static_cast<long>(data_.train->examples[example].ids.size());
}

StepLoss TaggingTask::loss(const std::vector<int>& global_batch, const std::vector<int>& mine, long,
                           int) {
  const auto& train = *data_.train;
  const int cols = train.scheme.columns(), classes = train.scheme.classes();
  double ce_cells = 0, kd_cells = 0, dice_units = 0;
  for (int e : global_batch) {
    auto& ex = train.examples[static_cast<size_t>(e)];
    const long labelled = data::labelled_cells(ex);
    ce_cells += static_cast<double>(labelled);
    kd_cells += static_cast<double>(data::distillation_cells(ex));
    if (labelled > 0) dice_units += cols;
  }
  const bool kd = objective_.kd_weight != 0, dice = objective_.dice_weight != 0;
  StepLoss out;
  out.terms = {{"ce", 0.0}};
  if (dice) out.terms.emplace_back("dice", 0.0);
  if (kd) out.terms.emplace_back("kd", 0.0);
  if (mine.empty()) return out;
  auto b = data::make_batch(train, mine, data_.pad_id);
  // Owned device copies, once per batch: the graph outlives `b` (the trainer runs backward
  // after this returns).
  auto ids =
      runtime::to_device(torch::from_blob(b.ids.data(), {b.size, b.len}, torch::kInt64), exec_);
  auto mask =
      runtime::to_device(torch::from_blob(b.mask.data(), {b.size, b.len}, torch::kInt64), exec_);
  auto tags = runtime::to_device(
      torch::from_blob(b.tags.data(), {b.size, b.len, cols}, torch::kInt64), exec_);
  auto kd_mask = runtime::to_device(
      torch::from_blob(b.kd_mask.data(), {b.size, b.len, cols}, torch::kUInt8), exec_);
  auto words = evaluation::batch_word_rows(b, exec_.device);
  torch::Tensor logits;
  {
    runtime::AutocastGuard amp(exec_);
    logits = tagger_->forward(ids, mask, words);  // [b, T, cols * classes]
  }
  torch::Tensor teacher;
  if (kd) {
    std::vector<torch::Tensor> rows;
    for (int r = 0; r < b.size; ++r) {
      auto e = static_cast<size_t>(mine[static_cast<size_t>(r)]);
      auto t = data_.teacher->get(e, train.examples[e].ids);
      rows.push_back(torch::constant_pad_nd(t, {0, 0, 0, b.len - t.size(0)}));
    }
    teacher = runtime::to_device(torch::stack(rows), exec_);  // [b, T, cols * classes]
  }
  auto terms = compute_objective(objective_, logits, teacher, tags, kd_mask, classes, ce_cells,
                                 kd_cells, dice_units);
  out.total = terms.total;
  // The parts stay on the device: the trainer reads them with the loss in one transfer.
  std::vector<torch::Tensor> parts = {terms.ce.detach()};
  if (dice) parts.push_back(terms.dice.detach());
  if (kd) parts.push_back(terms.kd.detach());
  out.term_values = torch::stack(parts);
  return out;
}

Evaluation TaggingTask::evaluate() {
  Evaluation ev;
  if (!data_.dev || data_.dev->examples.empty()) {
    ev.fields["dev_f1"] = nullptr;
    return ev;
  }
  auto pred =
      evaluation::predict(*tagger_, *data_.dev, data_.pad_id, 32, exec_.device, data_.decoder);
  ev.score = evaluation::score(data_.format, *data_.dev_gold, pred, data_.types).mention.f1;
  ev.fields["dev_f1"] = ev.score;
  return ev;
}

}  // namespace kdx::training
