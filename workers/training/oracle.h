// Oracle teacher logits, made from the gold tags: +margin for the gold class of every tag
// cell and -margin for the others, with a chosen fraction of cells given a wrong class. A
// student distilled from it shows what the objective does with a perfect (or a known-noisy)
// teacher, the control that separates "distillation works" from "this teacher is good".
#pragma once

#include <torch/torch.h>

#include <random>

#include "workers/data/encode.h"

namespace kdx::training {

// [ids.size(), columns * classes]; cells without gold ([CLS], [SEP]) are all 0.
torch::Tensor oracle_logits(const data::Example& ex, int columns, int classes, double margin,
                            double noise, std::mt19937_64& rng);

}  // namespace kdx::training
