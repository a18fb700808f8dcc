#include "workers/training/trainer.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

#include "common/error.h"
#include "common/strings.h"
#include "workers/evaluation/predict.h"
#include "workers/training/checkpoint.h"

namespace kdx::training {

std::atomic<int> g_stop_signal{0};

std::vector<int> epoch_order(size_t examples, uint64_t seed, int epoch) {
  std::vector<int> order(examples);
  for (size_t i = 0; i < examples; ++i) order[i] = static_cast<int>(i);
  std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(epoch));
  // Fisher-Yates with our own index draw: std::shuffle's use of the engine is not portable.
  for (size_t i = examples; i > 1; --i) {
    size_t j = static_cast<size_t>(rng() % i);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

Trainer::Trainer(models::Tagger tagger, TrainerOptions options, TrainData data,
                 distributed::Reducer& reducer)
    : tagger_(std::move(tagger)), opt_(std::move(options)), data_(data), reducer_(reducer) {
  optimizer_ = std::make_unique<torch::optim::AdamW>(
      tagger_->parameters(), torch::optim::AdamWOptions(opt_.lr).weight_decay(opt_.weight_decay));
  long per_epoch =
      (static_cast<long>(data_.train->examples.size()) + opt_.batch_size - 1) / opt_.batch_size;
  total_steps_ = per_epoch * opt_.epochs;
  // KDX_BUCKET_MB: gradient bucket size for the all-reduce; 0 = one all-reduce per parameter.
  if (const char* mb = std::getenv("KDX_BUCKET_MB"))
    bucket_bytes_ = static_cast<size_t>(std::atof(mb) * (1 << 20));
  if (opt_.kd_weight != 0 && !data_.teacher)
    throw Error("kd_weight is " + std::to_string(opt_.kd_weight) +
                " but no teacher logits cache was given");
}

double Trainer::lr_at(long step) const {
  if (opt_.warmup_steps > 0 && step < opt_.warmup_steps)
    return opt_.lr * static_cast<double>(step + 1) / static_cast<double>(opt_.warmup_steps);
  long decay = std::max<long>(1, total_steps_ - opt_.warmup_steps);
  double left = static_cast<double>(total_steps_ - step) / static_cast<double>(decay);
  return opt_.lr * std::max(0.0, std::min(1.0, left));
}

double Trainer::train_step(const std::vector<int>& global_batch, long step, bool& stop) {
  const auto& train = *data_.train;
  const int cols = train.scheme.columns(), classes = train.scheme.classes();
  // Normalisers from the whole global batch, which every rank knows: the summed gradients
  // of N ranks then equal one rank's gradient on the whole batch.
  double tag_cells = 0, tokens = 0;
  for (int e : global_batch) {
    auto& ex = train.examples[static_cast<size_t>(e)];
    tokens += static_cast<double>(ex.ids.size());
    for (int t : ex.tags) tag_cells += t != data::kIgnoreTag;
  }
  std::vector<int> mine;
  for (size_t i = static_cast<size_t>(reducer_.rank); i < global_batch.size();
       i += static_cast<size_t>(reducer_.world))
    mine.push_back(global_batch[i]);

  torch::manual_seed(opt_.seed * 7919ULL +
                     static_cast<uint64_t>(step) * static_cast<uint64_t>(reducer_.world) +
                     static_cast<uint64_t>(reducer_.rank));
  double local_loss = 0;
  if (!mine.empty()) {
    auto b = data::make_batch(train, mine, data_.pad_id);
    auto ids = torch::from_blob(b.ids.data(), {b.size, b.len}, torch::kInt64);
    auto mask = torch::from_blob(b.mask.data(), {b.size, b.len}, torch::kInt64);
    auto tags = torch::from_blob(b.tags.data(), {b.size * b.len * cols}, torch::kInt64);
    auto logits = tagger_->forward(ids, mask);  // [b, T, cols * classes]
    auto ce = torch::nll_loss(torch::log_softmax(logits.reshape({-1, classes}), -1), tags, {},
                              at::Reduction::Sum, data::kIgnoreTag) /
              tag_cells;
    auto loss = opt_.ce_weight * ce;
    if (opt_.kd_weight != 0) {
      std::vector<torch::Tensor> rows;
      for (int r = 0; r < b.size; ++r) {
        auto& ex = train.examples[static_cast<size_t>(mine[static_cast<size_t>(r)])];
        auto t = data_.teacher->get(static_cast<size_t>(mine[static_cast<size_t>(r)]), ex.ids);
        rows.push_back(torch::constant_pad_nd(t, {0, 0, 0, b.len - t.size(0)}));
      }
      auto teacher = torch::stack(rows);  // [b, T, cols * classes]
      auto m = mask.to(torch::kFloat32).unsqueeze(-1);
      torch::Tensor kd;
      if (opt_.kd_loss == "kl") {
        double T = opt_.temperature;
        auto s = torch::log_softmax(logits.view({b.size, b.len, cols, classes}) / T, -1);
        auto p = torch::softmax(teacher.view({b.size, b.len, cols, classes}) / T, -1);
        auto kl = (p * (torch::log(p + 1e-12) - s)).sum(-1).sum(-1, true);  // [b, T, 1]
        kd = (kl * m).sum() * (T * T) / (tokens * cols);
      } else {
        kd = ((logits - teacher).pow(2) * m).sum() / (tokens * cols * classes);
      }
      loss = loss + opt_.kd_weight * kd;
    }
    loss.backward();
    local_loss = loss.item<double>();
  }
  auto params = tagger_->parameters();
  auto t0 = std::chrono::steady_clock::now();
  distributed::sync_gradients(reducer_, params, bucket_bytes_);
  sync_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++sync_steps_;
  auto reduced =
      distributed::allreduce_scalars(reducer_, {local_loss, g_stop_signal.load() ? 1.0 : 0.0});
  double global_loss = reduced[0];
  stop = reduced[1] > 0;
  if (!std::isfinite(global_loss)) return global_loss;
  if (opt_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, opt_.grad_clip);
  for (auto& g : optimizer_->param_groups())
    static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr_at(step));
  optimizer_->step();
  optimizer_->zero_grad();
  return global_loss;
}

double Trainer::evaluate_dev() {
  if (!data_.dev || data_.dev->examples.empty()) return -1;
  auto pred = evaluation::predict(*tagger_, *data_.dev, data_.pad_id);
  return evaluation::score(data_.format, *data_.dev_gold, pred, data_.types).mention.f1;
}

void Trainer::write_checkpoint(const TrainingState& s) {
  if (reducer_.rank != 0 || opt_.checkpoint_dir.empty()) return;
  save_checkpoint(opt_.checkpoint_dir, *tagger_, *optimizer_, s);
}

TrainingState Trainer::run() {
  TrainingState s;
  if (!opt_.checkpoint_dir.empty()) {
    if (auto resumed = load_checkpoint(opt_.checkpoint_dir, *tagger_, *optimizer_)) {
      s = *resumed;
      if (reducer_.rank == 0 && !opt_.quiet)
        std::fprintf(stderr, "kdx-worker: resuming from %s at epoch %d, step %ld\n",
                     opt_.checkpoint_dir.c_str(), s.epoch + 1, s.step);
    }
  }
  distributed::sync_parameters(reducer_, tagger_->parameters());
  tagger_->train();
  const long n = static_cast<long>(data_.train->examples.size());
  const long per_epoch = (n + opt_.batch_size - 1) / opt_.batch_size;
  const bool tty = ::isatty(STDERR_FILENO) && reducer_.rank == 0 && !opt_.quiet;
  auto started = std::chrono::steady_clock::now();
  double last_print = 0;
  long tokens_here = 0, steps_here = 0;
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };

  while (!s.finished && s.epoch < opt_.epochs) {
    auto order = epoch_order(static_cast<size_t>(n), opt_.seed, s.epoch);
    double loss_sum = 0;
    int loss_n = 0;
    for (long k = s.batch_in_epoch; k < per_epoch; ++k) {
      std::vector<int> batch(order.begin() + k * opt_.batch_size,
                             order.begin() + std::min(n, (k + 1) * opt_.batch_size));
      bool stop = false;
      double loss = train_step(batch, s.step, stop);
      if (!std::isfinite(loss))
        throw Error("loss is " + std::string(std::isnan(loss) ? "NaN" : "infinite") + " at step " +
                    std::to_string(s.step + 1) + " (epoch " + std::to_string(s.epoch + 1) +
                    "); training stopped" +
                    (opt_.checkpoint_dir.empty()
                         ? std::string()
                         : "; the last good checkpoint is kept in " + opt_.checkpoint_dir));
      long batch_tokens = 0;
      for (int e : batch)
        batch_tokens += static_cast<long>(data_.train->examples[static_cast<size_t>(e)].ids.size());
      s.tokens += batch_tokens;
      tokens_here += batch_tokens;
      ++s.step;
      ++steps_here;
      s.batch_in_epoch = static_cast<int>(k + 1);
      s.last_loss = loss;
      loss_sum += loss;
      ++loss_n;
      double t = elapsed();
      tokens_per_s_ = t > 0 ? static_cast<double>(tokens_here) / t : 0;
      if (reducer_.rank == 0 && !opt_.quiet && (tty ? t - last_print > 0.2 : t - last_print > 30)) {
        long done = s.step, total = total_steps_;
        double per_step = t / static_cast<double>(std::max<long>(1, steps_here));
        char loss_text[32];
        std::snprintf(loss_text, sizeof loss_text, "%.4f", loss);
        std::string line =
            "epoch " + std::to_string(s.epoch + 1) + "/" + std::to_string(opt_.epochs) + " step " +
            std::to_string(done) + "/" + std::to_string(total) + " " +
            std::to_string(static_cast<long>(tokens_per_s_)) + " tok/s loss " + loss_text +
            " ETA " + format_duration(per_step * static_cast<double>(total - done));
        std::fprintf(stderr, tty ? "\r\033[K%s" : "%s\n", line.c_str());
        last_print = t;
      }
      if (stop) {
        // Every rank saw the same flag in the step's all-reduce: all stop after this step.
        s.elapsed_s += elapsed();
        write_checkpoint(s);
        throw StopRequested(g_stop_signal.load() ? g_stop_signal.load() : SIGTERM);
      }
      if (opt_.checkpoint_every > 0 && s.step % opt_.checkpoint_every == 0) write_checkpoint(s);
      if (opt_.max_steps > 0 && s.step >= opt_.max_steps) {
        s.elapsed_s += elapsed();
        write_checkpoint(s);
        return s;
      }
    }
    if (tty) std::fprintf(stderr, "\n");
    double dev_f1 = evaluate_dev();
    bool improved = dev_f1 > s.best_dev_f1 || dev_f1 < 0;
    if (improved) {
      s.best_dev_f1 = dev_f1;
      s.best_step = s.step;
      s.epochs_without_improvement = 0;
      if (reducer_.rank == 0 && !opt_.best_weights.empty())
        save_weights(*tagger_, opt_.best_weights);
    } else {
      ++s.epochs_without_improvement;
    }
    if (reducer_.rank == 0 && !opt_.metrics_path.empty()) {
      nlohmann::json m = {{"epoch", s.epoch + 1},
                          {"step", s.step},
                          {"train_loss", loss_n ? loss_sum / loss_n : 0.0},
                          {"dev_f1", dev_f1 >= 0 ? nlohmann::json(dev_f1) : nlohmann::json()},
                          {"lr", lr_at(std::max<long>(0, s.step - 1))},
                          {"tokens_per_s", tokens_per_s_},
                          {"elapsed_s", s.elapsed_s + elapsed()}};
      std::ofstream(opt_.metrics_path, std::ios::app) << m.dump() << "\n";
      if (!opt_.quiet) std::fprintf(stderr, "kdx-worker: %s\n", m.dump().c_str());
    }
    ++s.epoch;
    s.batch_in_epoch = 0;
    if (opt_.patience > 0 && s.epochs_without_improvement >= opt_.patience) s.finished = true;
    if (s.epoch >= opt_.epochs) s.finished = true;
    s.elapsed_s += elapsed();
    started = std::chrono::steady_clock::now();
    tokens_here = 0;
    steps_here = 0;
    last_print = 0;
    write_checkpoint(s);
  }
  return s;
}

}  // namespace kdx::training
