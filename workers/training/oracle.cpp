#include "workers/training/oracle.h"

namespace kdx::training {

torch::Tensor oracle_logits(const data::Example& ex, int columns, int classes, double margin,
                            double noise, std::mt19937_64& rng) {
  const int64_t len = static_cast<int64_t>(ex.ids.size());
  auto out = torch::zeros({len, columns * classes});
  float* p = out.data_ptr<float>();
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  for (int64_t t = 0; t < len; ++t) {
    for (int c = 0; c < columns; ++c) {
      int gold = ex.tags[static_cast<size_t>(t * columns + c)];
      if (gold == data::kIgnoreTag) continue;
      int hot = gold;
      if (noise > 0 && coin(rng) < noise)  // a wrong class, uniformly among the others
        hot = (gold + 1 + static_cast<int>(rng() % static_cast<uint64_t>(classes - 1))) % classes;
      float* cell = p + t * columns * classes + c * classes;
      for (int k = 0; k < classes; ++k) cell[k] = static_cast<float>(k == hot ? margin : -margin);
    }
  }
  return out;
}

}  // namespace kdx::training
