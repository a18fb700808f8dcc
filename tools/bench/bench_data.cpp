// Data preparation on the real data sets: tokenize + encode RuNNE train (tokens/s; target:
// the whole set in under 1 s), read every RuREBus zip (MB/s).
#include <benchmark/benchmark.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "workers/data/encode.h"
#include "workers/data/readers.h"
#include "workers/data/vocab_builder.h"

namespace {

std::string data_root() {
  const char* env = std::getenv("KDX_DATA_DIR");
  return env && *env ? env : std::string(KDX_SOURCE_DIR) + "/../shared/data";
}

void BM_RunneTrainPrepare(benchmark::State& state) {
  std::string file = data_root() + "/runne/train.jsonl";
  auto docs0 = kdx::data::read_dataset("runne", {file});
  kdx::data::Tokenizer tok(kdx::data::build_vocab(docs0, 8000, {}), {});
  auto scheme = kdx::data::make_scheme("per_type_bio", kdx::data::types_of(docs0));
  long tokens = 0;
  for (auto _ : state) {
    auto docs = kdx::data::read_dataset("runne", {file});
    auto enc = kdx::data::encode_dataset(docs, tok, scheme, 128);
    tokens = enc.total_tokens();
    benchmark::DoNotOptimize(enc.examples.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens) * state.iterations(),
                                                  benchmark::Counter::kIsRate);
  state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_RunneTrainPrepare)->Unit(benchmark::kMillisecond);

void BM_RurebusReadZips(benchmark::State& state) {
  std::vector<std::string> zips;
  double bytes = 0;
  for (auto n : {"train_part_1", "train_part_2", "train_part_3", "test_ner_only"}) {
    zips.push_back(data_root() + "/rurebus/" + n + ".zip");
    struct stat st;
    ::stat(zips.back().c_str(), &st);
    bytes += static_cast<double>(st.st_size);
  }
  for (auto _ : state) {
    auto docs = kdx::data::read_brat(zips, kdx::data::rurebus_types());
    benchmark::DoNotOptimize(docs.data());
  }
  state.counters["MB/s"] =
      benchmark::Counter(bytes / 1e6 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RurebusReadZips)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
