// Running a tagger over encoded data: argmax tags per example, decoded back to character
// spans, and scored with the shared task's own metric (workers/data/metrics).
#pragma once

#include <string>
#include <vector>

#include "workers/data/encode.h"
#include "workers/data/metrics.h"
#include "workers/models/tagger.h"

namespace kdx::evaluation {

// Predicted documents (ids as in `data`), via tagger->infer() in batches.
std::vector<data::Document> predict(models::TaggerImpl& tagger, const data::EncodedDataset& data,
                                    int pad_id, int batch_size = 32,
                                    torch::Device device = torch::kCPU);

// The dataset format's official scores (runne: RuNNE scorer; others: exact-span P/R/F1).
data::NerScores score(const std::string& format, const std::vector<data::Document>& gold,
                      const std::vector<data::Document>& pred,
                      const std::vector<std::string>& types);

}  // namespace kdx::evaluation
