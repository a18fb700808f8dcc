#include "workers/evaluation/latency.h"

#include <algorithm>
#include <chrono>

namespace kdx::evaluation {

Latency measure_latency(models::TaggerImpl& tagger, int vocab_size, int batch, int tokens, int runs,
                        int warmup, const runtime::Execution& exec) {
  bool was_training = tagger.is_training();
  tagger.eval();
  torch::manual_seed(1234);
  auto ids = torch::randint(5, std::max(6, vocab_size), {batch, tokens}, torch::kInt64);
  auto mask = torch::ones({batch, tokens}, torch::kInt64);
  torch::Tensor words;  // rows of its word-vector table, row 0 (no vector) included
  if (tagger.word_rows() > 0)
    words = torch::randint(0, tagger.word_rows(), {batch, tokens}, torch::kInt64).to(exec.device);
  ids = ids.to(exec.device);
  mask = mask.to(exec.device);
  runtime::AutocastGuard amp(exec);
  for (int i = 0; i < warmup; ++i) tagger.infer(ids, mask, words);
  runtime::synchronize(exec);
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto out = tagger.infer(ids, mask, words);
    runtime::synchronize(exec);
    (void)out.data_ptr();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  tagger.train(was_training);
  std::sort(ms.begin(), ms.end());
  Latency l;
  l.median_ms = ms[ms.size() / 2];
  l.min_ms = ms.front();
  l.max_ms = ms.back();
  l.batch = batch;
  l.tokens = tokens;
  l.runs = runs;
  l.threads = at::get_num_threads();
  return l;
}

}  // namespace kdx::evaluation
