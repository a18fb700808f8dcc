// `kdx-worker export`: a finished run's model as a self-contained directory that a C++
// program loads with load_exported() (see tools/kdx-tag.cpp): model.json (architecture),
// model.safetensors (weights), vocab.txt + tokenizer_config.json, types.json, and
// encoding.json (tagging, window, the run's decoding, the data format), and vectors.txt (the
// word list of a model that reads pretrained word vectors; their values are in its weights). The
// model outputs logits; decoding them to tags stays outside it (workers/decoding).
#pragma once

#include <string>
#include <vector>

#include "workers/data/tagging.h"
#include "workers/data/tokenizer.h"
#include "workers/data/word_table.h"
#include "workers/decoding/decode.h"
#include "workers/models/tagger.h"

namespace kdx::training {

void export_model(const std::string& run_dir, const std::string& out_dir);

struct ExportedModel {
  models::Tagger tagger;
  std::unique_ptr<data::Tokenizer> tokenizer;
  data::TagScheme scheme;
  int window = 128;
  // The run's params.decoding; greedy for exports without one (older runs, older exports).
  decoding::Decoder decoder = decoding::Decoder::Greedy;
  data::WordTable words;  // a model that reads word vectors: its vectors.txt
};
ExportedModel load_exported(const std::string& dir);

// Tags raw text with an exported model: character-span entities.
std::vector<data::Entity> tag_text(ExportedModel& model, const std::u32string& text);

}  // namespace kdx::training
