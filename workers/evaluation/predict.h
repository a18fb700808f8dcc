// Running a tagger over encoded data: tags per example (argmax, or Viterbi over each
// document's stitched windows; see workers/decoding), decoded back to character spans, and
// scored with the shared task's own metric (workers/data/metrics).
#pragma once

#include <string>
#include <vector>

#include "workers/data/encode.h"
#include "workers/data/metrics.h"
#include "workers/decoding/decode.h"
#include "workers/models/tagger.h"

namespace kdx::evaluation {

// Predicted documents (ids as in `data`), via tagger->infer() in batches. Greedy (the
// default, and what runs without a `decoding` parameter get) is the argmax on the device,
// as before decoders existed, so old runs reproduce.
// A batch's word-vector rows [size x len] as an int64 tensor on `device`; undefined when its
// examples carry none (a model without word vectors).
torch::Tensor batch_word_rows(const data::Batch& b, torch::Device device);

std::vector<data::Document> predict(models::TaggerImpl& tagger, const data::EncodedDataset& data,
                                    int pad_id, int batch_size = 32,
                                    torch::Device device = torch::kCPU,
                                    decoding::Decoder decoder = decoding::Decoder::Greedy);

// The first `max_windows` examples of `data` (in order), each padded to `length` tokens (at
// least its own), with the logits tagger->infer() gives them, as a safetensors file: ids and
// mask [n x length] (int64), words (int64, for a model with word vectors) and logits
// [n x length x columns*classes] (float32). A reference another runtime (ONNX Runtime, see
// tools/onnx-export) is checked against. Returns the number of windows written.
int write_reference_logits(models::TaggerImpl& tagger, const data::EncodedDataset& data, int pad_id,
                           int max_windows, int length, int batch_size, const std::string& path);

// The dataset format's official scores (runne: RuNNE scorer; others: exact-span P/R/F1).
data::NerScores score(const std::string& format, const std::vector<data::Document>& gold,
                      const std::vector<data::Document>& pred,
                      const std::vector<std::string>& types);

}  // namespace kdx::evaluation
