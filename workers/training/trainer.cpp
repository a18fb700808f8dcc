#include "workers/training/trainer.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/log.h"
#include "common/strings.h"
#include "workers/runtime/loss_scaler.h"
#include "workers/training/checkpoint.h"

namespace kdx::training {

std::atomic<int> g_stop_signal{0};
std::atomic<bool> g_in_training_loop{false};

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

Trainer::Trainer(std::shared_ptr<torch::nn::Module> model, Task& task, TrainerOptions options,
                 distributed::Reducer& reducer)
    : model_(std::move(model)), task_(task), opt_(std::move(options)), reducer_(reducer) {
  // Before the optimizer: AdamW's state is created beside the parameters it updates.
  model_->to(opt_.exec.device);
  optimizer_ = std::make_unique<torch::optim::AdamW>(
      model_->parameters(), torch::optim::AdamWOptions(opt_.lr).weight_decay(opt_.weight_decay));
  if (opt_.lr_schedule != "linear" && opt_.lr_schedule != "constant" &&
      opt_.lr_schedule != "plateau")
    throw Error("unknown lr_schedule '" + opt_.lr_schedule +
                "' (expected linear, constant or plateau)");
  if (!opt_.order) {
    const size_t n = task_.size();
    const uint64_t seed = opt_.seed;
    opt_.order = [n, seed](int epoch) { return epoch_order(n, seed, epoch); };
  }
  // Every epoch has the same length (the sampler draws a fixed number), so epoch 0 tells.
  epoch_size_ = static_cast<long>(opt_.order(0).size());
  long per_epoch = (epoch_size_ + opt_.batch_size - 1) / opt_.batch_size;
  total_steps_ = per_epoch * opt_.epochs;
  // KDX_BUCKET_MB: gradient bucket size for the all-reduce; 0 = one all-reduce per parameter.
  if (const char* mb = std::getenv("KDX_BUCKET_MB"))
    bucket_bytes_ = static_cast<size_t>(std::atof(mb) * (1 << 20));
}

namespace {

// clip_grad_norm_ with the norm kept on the device: LibTorch's returns it as a double, which
// waits for the GPU every step. Same arithmetic: scale by max/(norm + 1e-6) when below 1.
void clip_gradients(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard g;
  std::vector<torch::Tensor> norms;
  for (auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm(2.0).to(torch::kFloat32));
  if (norms.empty()) return;
  auto total = torch::stack(norms).norm(2.0);
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (auto& p : params)
    if (p.grad().defined()) p.mutable_grad().mul_(coef.to(p.grad().scalar_type()));
}

}  // namespace

void Trainer::set_frozen(int epoch) {
  const bool freeze = epoch < opt_.freeze_epochs;
  for (auto& p : opt_.frozen) {
    p.requires_grad_(!freeze);
    // No gradient at all, not a zero one: AdamW skips a parameter without a gradient, but
    // would still decay its weights and apply its moments for a zero gradient.
    if (freeze) p.mutable_grad() = torch::Tensor();
  }
}

double Trainer::lr_at(long step, double lr_scale) const {
  if (opt_.warmup_steps > 0 && step < opt_.warmup_steps)
    return opt_.lr * static_cast<double>(step + 1) / static_cast<double>(opt_.warmup_steps);
  if (opt_.lr_schedule == "constant") return opt_.lr;
  if (opt_.lr_schedule == "plateau") return std::max(opt_.lr * lr_scale, opt_.min_lr);
  long decay = std::max<long>(1, total_steps_ - opt_.warmup_steps);
  double left = static_cast<double>(total_steps_ - step) / static_cast<double>(decay);
  return opt_.lr * std::max(0.0, std::min(1.0, left));
}

double Trainer::train_step(const std::vector<int>& global_batch, TrainingState& s,
                           std::vector<std::pair<std::string, double>>& terms, bool& stop,
                           bool& skipped) {
  const long step = s.step;
  std::vector<int> mine;
  for (size_t i = static_cast<size_t>(reducer_.rank); i < global_batch.size();
       i += static_cast<size_t>(reducer_.world))
    mine.push_back(global_batch[i]);
  torch::manual_seed(opt_.seed * 7919ULL +
                     static_cast<uint64_t>(step) * static_cast<uint64_t>(reducer_.world) +
                     static_cast<uint64_t>(reducer_.rank));
  auto l = task_.loss(global_batch, mine, step, s.epoch);
  const bool scaling = opt_.exec.loss_scaling;
  const double scale = scaling ? s.scaler.scale : 1.0;
  // The one device-to-host transfer of a step: the loss and its parts, for the log.
  std::vector<double> local(1 + l.terms.size(), 0.0);
  for (size_t i = 0; i < l.terms.size(); ++i) local[1 + i] = l.terms[i].second;
  if (l.total.defined()) {
    (scaling ? l.total * scale : l.total).backward();
    auto parts = l.term_values.defined()
                     ? torch::cat({l.total.detach().reshape({1}).to(torch::kFloat64),
                                   l.term_values.reshape({-1}).to(torch::kFloat64)})
                     : l.total.detach().reshape({1}).to(torch::kFloat64);
    parts = parts.to(torch::kCPU).contiguous();
    auto* v = parts.data_ptr<double>();
    for (int64_t i = 0; i < parts.numel() && static_cast<size_t>(i) < local.size(); ++i)
      local[static_cast<size_t>(i)] = v[i];
  }
  // Frozen parameters have no gradient: they are neither summed over ranks nor updated.
  std::vector<torch::Tensor> params;
  for (auto& p : model_->parameters())
    if (p.requires_grad()) params.push_back(p);
  auto t0 = std::chrono::steady_clock::now();
  distributed::sync_gradients(reducer_, params, bucket_bytes_);
  sync_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++sync_steps_;
  // Gradients are summed over ranks before unscaling, so every rank sees the same overflow.
  bool finite_grads = !scaling || runtime::unscale_gradients(params, scale);
  std::vector<double> scalars = {local[0], g_stop_signal.load() ? 1.0 : 0.0,
                                 finite_grads ? 0.0 : 1.0};
  for (size_t i = 1; i < local.size(); ++i) scalars.push_back(local[i]);
  auto reduced = distributed::allreduce_scalars(reducer_, scalars);
  double global_loss = reduced[0];
  stop = reduced[1] > 0;
  terms = l.terms;
  for (size_t i = 0; i < terms.size(); ++i) terms[i].second = reduced[3 + i];
  skipped = false;
  if (scaling) {
    bool overflow = reduced[2] > 0 || !std::isfinite(global_loss);
    runtime::update_scale(s.scaler, overflow);
    if (overflow) {
      optimizer_->zero_grad();
      skipped = true;
      if (!opt_.quiet)
        spdlog::warn("step {}: inf/NaN in the fp16 gradients; step skipped, loss scale now {}",
                     step + 1, s.scaler.scale);
      return global_loss;
    }
  }
  if (!std::isfinite(global_loss)) return global_loss;
  if (opt_.grad_clip > 0) clip_gradients(params, opt_.grad_clip);
  for (auto& g : optimizer_->param_groups())
    static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr_at(step, s.lr_scale));
  optimizer_->step();
  optimizer_->zero_grad();
  return global_loss;
}

void Trainer::write_progress(const TrainingState& s, double tokens_per_s, double eta_s,
                             double loss) {
  if (reducer_.rank != 0 || opt_.progress_path.empty()) return;
  nlohmann::json p = {
      {"stage", opt_.stage},
      {"epoch", s.epoch + 1},
      {"epochs", opt_.epochs},
      {"step", s.step},
      {"total_steps", total_steps_},
      {"tokens_per_s", tokens_per_s},
      {"eta_s", eta_s},
      {"loss", std::isfinite(loss) ? nlohmann::json(loss) : nlohmann::json()},
      {"best_score", s.best_score >= 0 ? nlohmann::json(s.best_score) : nlohmann::json()},
      {"updated",
       std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()}};
  try {
    write_file_atomic(opt_.progress_path, p.dump() + "\n");
  } catch (const Error& e) {
    spdlog::debug("progress.json not written: {}", e.what());  // progress is best effort
  }
}

void Trainer::write_checkpoint(const TrainingState& s) {
  if (reducer_.rank != 0 || opt_.checkpoint_dir.empty()) return;
  save_checkpoint(opt_.checkpoint_dir, *model_, *optimizer_, s);
}

TrainingState Trainer::run() {
  // From here a stop signal is this function's to handle (a flag, checked with every rank after
  // each step and once more at the end): set before the parameters' broadcast, so that no rank
  // is still outside, exiting at once, while another already waits for it in a collective.
  struct InLoop {  // cleared on every way out, a StopRequested or an error included
    InLoop() { g_in_training_loop.store(true); }
    ~InLoop() { g_in_training_loop.store(false); }
  } in_loop;
  // A stop that came after the last step's check: the checkpoint just written holds everything.
  auto stop_if_asked = [] {
    if (int sig = g_stop_signal.load()) throw StopRequested(sig);
  };
  TrainingState s;
  if (!opt_.checkpoint_dir.empty()) {
    if (auto resumed =
            load_checkpoint(opt_.checkpoint_dir, *model_, *optimizer_, opt_.exec.device)) {
      s = *resumed;
      if (!opt_.quiet)
        spdlog::info("resuming from {} at epoch {}, step {}", opt_.checkpoint_dir, s.epoch + 1,
                     s.step);
    }
  }
  distributed::sync_parameters(reducer_, model_->parameters());
  set_frozen(s.epoch);  // also when the resumed run has no epoch left (params_trainable)
  model_->train();
  const long n = epoch_size_;
  const long per_epoch = (n + opt_.batch_size - 1) / opt_.batch_size;
  if (s.batch_in_epoch > per_epoch)
    throw Error(opt_.checkpoint_dir + "/state.json: batch " + std::to_string(s.batch_in_epoch) +
                " of an epoch of " + std::to_string(per_epoch) +
                " batches: the checkpoint belongs to other data or another batch size");
  const bool tty = ::isatty(STDERR_FILENO) && reducer_.rank == 0 && !opt_.quiet;
  auto started = std::chrono::steady_clock::now();
  double last_print = 0, last_progress = -1e9;
  long tokens_here = 0, steps_here = 0;
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };

  while (!s.finished && s.epoch < opt_.epochs) {
    auto order = opt_.order(s.epoch);
    if (static_cast<long>(order.size()) != n)
      throw Error("the training order of epoch " + std::to_string(s.epoch + 1) + " has " +
                  std::to_string(order.size()) + " examples, epoch 1 had " + std::to_string(n));
    set_frozen(s.epoch);
    double loss_sum = 0;
    std::vector<std::pair<std::string, double>> term_sums;
    int loss_n = 0;
    for (long k = s.batch_in_epoch; k < per_epoch; ++k) {
      std::vector<int> batch(order.begin() + k * opt_.batch_size,
                             order.begin() + std::min(n, (k + 1) * opt_.batch_size));
      bool stop = false;
      std::vector<std::pair<std::string, double>> terms;
      bool skipped = false;
      double loss = train_step(batch, s, terms, stop, skipped);
      if (!std::isfinite(loss) && !skipped)
        throw Error("loss is " + std::string(std::isnan(loss) ? "NaN" : "infinite") + " at step " +
                    std::to_string(s.step + 1) + " (epoch " + std::to_string(s.epoch + 1) +
                    "); training stopped" +
                    (opt_.checkpoint_dir.empty()
                         ? std::string()
                         : "; the last good checkpoint is kept in " + opt_.checkpoint_dir));
      long batch_tokens = 0;
      for (int e : batch) batch_tokens += task_.tokens(static_cast<size_t>(e));
      s.tokens += batch_tokens;
      tokens_here += batch_tokens;
      ++s.step;
      ++steps_here;
      s.batch_in_epoch = static_cast<int>(k + 1);
      if (std::isfinite(loss)) {  // a skipped fp16 step has no loss to average
        s.last_loss = loss;
        loss_sum += loss;
        if (term_sums.empty())
          term_sums = terms;
        else
          for (size_t i = 0; i < terms.size(); ++i) term_sums[i].second += terms[i].second;
        ++loss_n;
      }
      double t = elapsed();
      tokens_per_s_ = t > 0 ? static_cast<double>(tokens_here) / t : 0;
      const double per_step = t / static_cast<double>(std::max<long>(1, steps_here));
      const double eta = per_step * static_cast<double>(total_steps_ - s.step);
      if (t - last_progress > 2) {
        write_progress(s, tokens_per_s_, eta, loss);
        last_progress = t;
      }
      if (reducer_.rank == 0 && !opt_.quiet && (tty ? t - last_print > 0.2 : t - last_print > 30)) {
        char loss_text[32];
        std::snprintf(loss_text, sizeof loss_text, "%.4f", loss);
        std::string line = "epoch " + std::to_string(s.epoch + 1) + "/" +
                           std::to_string(opt_.epochs) + " step " + std::to_string(s.step) + "/" +
                           std::to_string(total_steps_) + " " +
                           std::to_string(static_cast<long>(tokens_per_s_)) + " tok/s loss " +
                           loss_text + " ETA " + format_duration(eta);
        // A terminal gets a bar redrawn in place; a log file gets a timestamped line.
        if (tty)
          std::fprintf(stderr, "\r\033[K%s", line.c_str());
        else
          spdlog::info("{}", line);
        last_print = t;
      }
      if (spdlog::should_log(spdlog::level::trace))
        spdlog::trace("step {} loss {:.5f} lr {:.3g}", s.step, loss, lr_at(s.step - 1, s.lr_scale));
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
        stop_if_asked();
        return s;
      }
    }
    if (tty) std::fprintf(stderr, "\n");
    auto ev = task_.evaluate();
    // Every rank decides early stopping and the plateau's learning rate on rank 0's score:
    // ranks that disagreed would stop at different epochs or train at different rates.
    if (reducer_.world > 1)
      ev.score = distributed::allreduce_scalars(reducer_, {reducer_.rank == 0 ? ev.score : 0.0})[0];
    // Ties go to the later epoch: with equal held-out scores the longer-trained weights are
    // kept, and a run whose dev F1 stays 0 does not keep its first, barely trained, epoch.
    bool improved = ev.score < 0 || ev.score > s.best_score + 1e-12;
    if (improved || ev.score >= s.best_score) {
      s.best_score = std::max(ev.score, s.best_score);
      s.best_step = s.step;
      s.best_epoch = s.epoch + 1;
      if (reducer_.rank == 0 && !opt_.best_weights.empty())
        save_weights(*model_, opt_.best_weights);
    }
    // A score still at 0 counts as no gain: a run that finds no dev entity for its patience
    // stops (and says so) instead of running every epoch at a learning rate that does not
    // train it.
    if (improved && ev.score > 0)
      s.epochs_without_improvement = 0;
    else if (ev.score >= 0)
      ++s.epochs_without_improvement;
    const double lr_before = lr_at(std::max<long>(0, s.step - 1), s.lr_scale);
    // The plateau, like patience, starts once the run finds dev entities at all: cutting the
    // rate while every tag is still O (the first epochs of a deep LSTM) only keeps it there.
    if (opt_.lr_schedule == "plateau" && ev.score >= 0 && (ev.score > 0 || s.plateau_best > 0)) {
      if (ev.score > s.plateau_best + 1e-12) {
        s.plateau_best = ev.score;
        s.plateau_bad_epochs = 0;
      } else if (++s.plateau_bad_epochs > opt_.plateau_patience) {
        s.lr_scale = std::max(s.lr_scale * opt_.plateau_factor, opt_.min_lr / opt_.lr);
        s.lr_scale = std::min(1.0, std::max(s.lr_scale, 1e-12));
        s.plateau_bad_epochs = 0;
      }
    }
    if (reducer_.rank == 0 && !opt_.metrics_path.empty()) {
      double steps = loss_n ? loss_n : 1;
      nlohmann::json m = {
          {"epoch", s.epoch + 1}, {"step", s.step}, {"train_loss", loss_sum / steps}};
      for (auto& [name, sum] : term_sums) m[name] = sum / steps;
      for (auto& [name, value] : ev.fields.items()) m[name] = value;
      m["lr"] = lr_before;
      m["tokens_per_s"] = tokens_per_s_;
      m["elapsed_s"] = s.elapsed_s + elapsed();
      std::ofstream out(opt_.metrics_path, std::ios::app);
      out << m.dump() << "\n";
      out.flush();
      if (!out) throw Error("cannot write " + opt_.metrics_path + ": " + std::strerror(errno));
    }
    if (!opt_.quiet) {
      std::string fields;
      for (auto& [name, sum] : term_sums)
        fields += fmt::format(" {} {:.4f}", name, sum / std::max(1, loss_n));
      for (auto& [name, value] : ev.fields.items())
        if (value.is_number()) fields += fmt::format(" {} {:.4f}", name, value.get<double>());
      spdlog::info("epoch {}/{} done: step {} loss {:.4f}{} ({:.0f} tok/s){}", s.epoch + 1,
                   opt_.epochs, s.step, loss_sum / std::max(1, loss_n), fields, tokens_per_s_,
                   improved && ev.score >= 0 ? ", best so far" : "");
    }
    ++s.epoch;
    s.batch_in_epoch = 0;
    // A model that has not found one dev entity yet gets twice the patience, and at least 6
    // epochs (small students and a halving learning rate often need a few to start), then
    // stops.
    const bool at_zero = s.best_score <= 0;
    if (opt_.patience > 0 &&
        s.epochs_without_improvement >= (at_zero ? zero_patience() : opt_.patience)) {
      s.finished = true;
      s.stalled = at_zero;
    }
    if (s.epoch >= opt_.epochs) s.finished = true;
    s.elapsed_s += elapsed();
    started = std::chrono::steady_clock::now();
    tokens_here = 0;
    steps_here = 0;
    last_print = 0;
    last_progress = -1e9;
    write_checkpoint(s);
    write_progress(s, tokens_per_s_, 0, s.last_loss);
    if (s.stalled && !opt_.quiet)
      spdlog::warn(
          "stopped after epoch {}: the held-out score stayed at 0 for {} epochs (the "
          "model found no dev entity; a lower lr may train it)",
          s.epoch, zero_patience());
    else if (s.finished && !opt_.quiet && s.epoch < opt_.epochs)
      spdlog::info("early stop after epoch {}: no held-out gain in {} epochs (best: epoch {})",
                   s.epoch, opt_.patience, s.best_epoch);
  }
  stop_if_asked();
  return s;
}

}  // namespace kdx::training
