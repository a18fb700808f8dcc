// Which training examples an epoch visits, in which order. Torch-free.
//  - shuffle: every example once, a permutation seeded by (seed, epoch) (epoch_order);
//  - entity_balanced: the paper's sampler. Each entity type t gets a target share of the
//    draws proportional to log(1 + n_t), n_t its entity count in the training windows; each
//    draw takes the type furthest below its share, then a window with probability
//    proportional to its entities of that type. Windows without entities are never drawn,
//    so rare types (RuNNE's few-shot DISEASE, PENALTY, WORK_OF_ART) are seen every epoch.
#pragma once

#include <cstdint>
#include <vector>

#include "workers/data/encode.h"

namespace kdx::training {

// [example][type]: entities of each type that begin in the example (gold tags; unlabelled
// examples count none).
std::vector<std::vector<int>> entity_counts(const data::EncodedDataset& data);

// `draws` example indices for epoch `epoch`; deterministic in (counts, draws, seed, epoch).
// Throws kdx::Error when no example has an entity.
std::vector<int> entity_balanced_order(const std::vector<std::vector<int>>& counts, long draws,
                                       uint64_t seed, int epoch);

// `subset`, shuffled by (seed, epoch).
std::vector<int> shuffled_subset(const std::vector<int>& subset, uint64_t seed, int epoch);

}  // namespace kdx::training
