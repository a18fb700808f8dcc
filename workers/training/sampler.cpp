#include "workers/training/sampler.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "common/error.h"

namespace kdx::training {

std::vector<std::vector<int>> entity_counts(const data::EncodedDataset& data) {
  const auto& scheme = data.scheme;
  const int cols = scheme.columns();
  const size_t types = scheme.types.size();
  const bool per_type = cols > 1 || scheme.name != "flat_bio";
  std::vector<std::vector<int>> counts(data.examples.size(), std::vector<int>(types, 0));
  for (size_t e = 0; e < data.examples.size(); ++e) {
    auto& ex = data.examples[e];
    if (!ex.labelled) continue;
    for (size_t i = 0; i < ex.tags.size(); ++i) {
      int tag = ex.tags[i];
      if (tag <= 0) continue;
      if (per_type) {
        // B = 1 in both per-type encodings; U = 4 in per_type_bilou (a one-token entity).
        bool begins = tag == 1 || (scheme.classes() == 5 && tag == 4);
        if (begins) ++counts[e][i % static_cast<size_t>(cols)];
      } else if ((tag - 1) % 2 == 0) {
        ++counts[e][static_cast<size_t>((tag - 1) / 2)];
      }
    }
  }
  return counts;
}

namespace {
std::mt19937_64 rng_of(uint64_t seed, int epoch) {
  return std::mt19937_64(seed * 1000003ULL + static_cast<uint64_t>(epoch) + 0x5eed);
}
}  // namespace

std::vector<int> entity_balanced_order(const std::vector<std::vector<int>>& counts, long draws,
                                       uint64_t seed, int epoch) {
  const size_t types = counts.empty() ? 0 : counts[0].size();
  // Per type: the examples holding it and the running sum of their counts.
  std::vector<std::vector<int>> holders(types);
  std::vector<std::vector<long>> cumulative(types);
  std::vector<double> share(types, 0);
  double share_sum = 0;
  for (size_t t = 0; t < types; ++t) {
    long total = 0;
    for (size_t e = 0; e < counts.size(); ++e)
      if (counts[e][t] > 0) {
        total += counts[e][t];
        holders[t].push_back(static_cast<int>(e));
        cumulative[t].push_back(total);
      }
    share[t] = std::log1p(static_cast<double>(total));
    share_sum += share[t];
  }
  if (share_sum <= 0) throw Error("sampler entity_balanced: no training window holds an entity");
  for (auto& s : share) s /= share_sum;
  auto rng = rng_of(seed, epoch);
  std::vector<long> drawn(types, 0);
  std::vector<int> order;
  order.reserve(static_cast<size_t>(std::max<long>(0, draws)));
  for (long k = 0; k < draws; ++k) {
    size_t best = 0;
    double best_deficit = -1e300;
    for (size_t t = 0; t < types; ++t) {
      if (holders[t].empty()) continue;
      double deficit = share[t] * static_cast<double>(k + 1) - static_cast<double>(drawn[t]);
      if (deficit > best_deficit + 1e-12) {
        best_deficit = deficit;
        best = t;
      }
    }
    ++drawn[best];
    const auto& cum = cumulative[best];
    long r = static_cast<long>(rng() % static_cast<uint64_t>(cum.back()));
    size_t i = static_cast<size_t>(std::upper_bound(cum.begin(), cum.end(), r) - cum.begin());
    order.push_back(holders[best][i]);
  }
  return order;
}

std::vector<int> shuffled_subset(const std::vector<int>& subset, uint64_t seed, int epoch) {
  std::vector<int> order = subset;
  auto rng = rng_of(seed, epoch);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  return order;
}

}  // namespace kdx::training
