#include "workers/training/mlm_task.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "workers/data/windows.h"

namespace kdx::training {

long MlmData::train_tokens() const {
  long n = 0;
  for (auto& e : train) n += static_cast<long>(e.ids.size());
  return n;
}

MlmData make_mlm_data(const std::vector<data::Document>& docs, const data::Tokenizer& tok,
                      int window, int heldout_every) {
  const auto& vocab = tok.vocab();
  MlmData d;
  d.vocab_size = static_cast<int>(vocab.size());
  d.pad = vocab.pad();
  d.mask = vocab.id("[MASK]");
  d.special.assign(vocab.size(), 0);
  for (size_t i = 0; i < vocab.size(); ++i) {
    auto& t = vocab.tokens[i];
    // [PAD], [UNK], [CLS], [SEP], [MASK] and BERT's [unusedN] slots.
    d.special[i] = t.size() > 2 && t.front() == '[' && t.back() == ']';
  }
  for (size_t di = 0; di < docs.size(); ++di) {
    auto tokens = tok.tokenize(docs[di].text);
    bool held = heldout_every > 0 && docs.size() >= static_cast<size_t>(heldout_every) &&
                di % static_cast<size_t>(heldout_every) == static_cast<size_t>(heldout_every - 1);
    for (auto& w : data::make_windows(tokens, docs[di].text, vocab, window)) {
      MlmExample ex;
      ex.ids.push_back(vocab.cls());
      ex.word_start.push_back(1);
      for (int i = w.first; i < w.first + w.count; ++i) {
        int id = tokens[static_cast<size_t>(i)].id;
        ex.ids.push_back(id);
        ex.word_start.push_back(vocab.tokens[static_cast<size_t>(id)].rfind("##", 0) != 0);
      }
      ex.ids.push_back(vocab.sep());
      ex.word_start.push_back(1);
      (held ? d.heldout : d.train).push_back(std::move(ex));
    }
  }
  return d;
}

MaskedExample mask_example(const MlmData& data, const MlmExample& ex, const MlmOptions& o,
                           int epoch, size_t index) {
  MaskedExample m;
  m.input = ex.ids;
  // A generator per (seed, epoch, example): order-free, so ranks and resumes agree.
  std::seed_seq seq{static_cast<uint32_t>(o.seed), static_cast<uint32_t>(o.seed >> 32),
                    static_cast<uint32_t>(epoch + 1), static_cast<uint32_t>(index),
                    static_cast<uint32_t>(index >> 32)};
  std::mt19937_64 rng(seq);
  // Candidate units: single pieces, or whole words (a start piece and its "##" followers).
  std::vector<std::vector<int>> units;
  int real = 0;
  for (size_t i = 0; i < ex.ids.size(); ++i) {
    if (data.special[static_cast<size_t>(ex.ids[i])]) continue;
    ++real;
    if (o.whole_word && !ex.word_start[i] && !units.empty() &&
        units.back().back() == static_cast<int>(i) - 1)
      units.back().push_back(static_cast<int>(i));
    else
      units.push_back({static_cast<int>(i)});
  }
  if (real == 0) return m;
  const int want = std::max(1, static_cast<int>(std::lround(real * o.mask_prob)));
  for (size_t i = units.size(); i > 1; --i) std::swap(units[i - 1], units[rng() % i]);
  std::vector<int> chosen;
  for (auto& u : units) {
    if (static_cast<int>(chosen.size()) >= want) break;
    if (static_cast<int>(chosen.size() + u.size()) > want && !chosen.empty()) continue;
    chosen.insert(chosen.end(), u.begin(), u.end());
  }
  std::sort(chosen.begin(), chosen.end());
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  for (int p : chosen) {
    m.positions.push_back(p);
    m.targets.push_back(ex.ids[static_cast<size_t>(p)]);
    double r = coin(rng);
    if (r < 0.8) {
      m.input[static_cast<size_t>(p)] = data.mask;
    } else if (r < 0.9) {
      int id;
      do id = static_cast<int>(rng() % static_cast<uint64_t>(data.vocab_size));
      while (data.special[static_cast<size_t>(id)]);
      m.input[static_cast<size_t>(p)] = id;
    }
  }
  return m;
}

namespace {

struct MlmBatch {
  torch::Tensor ids, mask, positions, targets;
};

MlmBatch make_batch(const MlmData& data, const std::vector<MaskedExample>& masked,
                    const runtime::Execution& exec) {
  size_t len = 0;
  for (auto& m : masked) len = std::max(len, m.input.size());
  const auto B = static_cast<int64_t>(masked.size()), T = static_cast<int64_t>(len);
  MlmBatch b;
  b.ids = torch::full({B, T}, data.pad, torch::kInt64);
  b.mask = torch::zeros({B, T}, torch::kInt64);
  std::vector<int64_t> pos, tgt;
  auto* ids = b.ids.data_ptr<int64_t>();
  auto* mask = b.mask.data_ptr<int64_t>();
  for (int64_t r = 0; r < B; ++r) {
    auto& m = masked[static_cast<size_t>(r)];
    for (size_t t = 0; t < m.input.size(); ++t) {
      ids[r * T + static_cast<int64_t>(t)] = m.input[t];
      mask[r * T + static_cast<int64_t>(t)] = 1;
    }
    for (size_t k = 0; k < m.positions.size(); ++k) {
      pos.push_back(r * T + m.positions[k]);
      tgt.push_back(m.targets[k]);
    }
  }
  b.positions = torch::tensor(pos, torch::kInt64);
  b.targets = torch::tensor(tgt, torch::kInt64);
  if (exec.is_cuda())
    for (auto* t : {&b.ids, &b.mask, &b.positions, &b.targets}) *t = runtime::to_device(*t, exec);
  return b;
}

}  // namespace

MlmTask::MlmTask(models::BertMlm model, const MlmData& data, MlmOptions options)
    : model_(std::move(model)), data_(data), options_(options) {}

StepLoss MlmTask::loss(const std::vector<int>& global_batch, const std::vector<int>& mine, long,
                       int epoch) {
  double targets = 0;
  for (int e : global_batch)
    targets += static_cast<double>(mask_example(data_, data_.train[static_cast<size_t>(e)],
                                                options_, epoch, static_cast<size_t>(e))
                                       .positions.size());
  StepLoss out;
  out.terms = {{"mlm", 0.0}, {"mlm_accuracy", 0.0}};
  if (mine.empty() || targets == 0) return out;
  std::vector<MaskedExample> masked;
  for (int e : mine)
    masked.push_back(mask_example(data_, data_.train[static_cast<size_t>(e)], options_, epoch,
                                  static_cast<size_t>(e)));
  auto b = make_batch(data_, masked, options_.exec);
  if (b.positions.numel() == 0) return out;
  torch::Tensor logits;
  {
    runtime::AutocastGuard amp(options_.exec);
    logits = model_->forward(b.ids, b.mask, b.positions);
  }
  logits = logits.to(torch::kFloat32);  // the loss in fp32, whatever autocast computed in
  auto sum = torch::nn::functional::cross_entropy(
      logits, b.targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  out.total = sum / targets;
  auto accuracy = logits.detach().argmax(-1).eq(b.targets).sum().to(torch::kFloat32) / targets;
  out.term_values = torch::stack({out.total.detach(), accuracy});
  return out;
}

Evaluation MlmTask::evaluate() {
  Evaluation ev;
  if (data_.heldout.empty()) {
    ev.fields["heldout_mlm_accuracy"] = nullptr;
    return ev;
  }
  torch::NoGradGuard g;
  bool was_training = model_->is_training();
  model_->eval();
  double loss = 0, correct = 0, n = 0;
  for (size_t start = 0; start < data_.heldout.size(); start += 32) {
    std::vector<MaskedExample> masked;
    for (size_t i = start; i < std::min(data_.heldout.size(), start + 32); ++i)
      masked.push_back(mask_example(data_, data_.heldout[i], options_, -1, i));
    auto b = make_batch(data_, masked, options_.exec);
    if (b.positions.numel() == 0) continue;
    torch::Tensor logits;
    {
      runtime::AutocastGuard amp(options_.exec);
      logits = model_->forward(b.ids, b.mask, b.positions);
    }
    logits = logits.to(torch::kFloat32);
    loss += torch::nn::functional::cross_entropy(
                logits, b.targets,
                torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                .item<double>();
    correct += logits.argmax(-1).eq(b.targets).sum().item<double>();
    n += static_cast<double>(b.targets.numel());
  }
  model_->train(was_training);
  ev.score = n > 0 ? correct / n : 0;
  ev.fields["heldout_mlm_loss"] = n > 0 ? loss / n : 0.0;
  ev.fields["heldout_mlm_accuracy"] = ev.score;
  return ev;
}

}  // namespace kdx::training
