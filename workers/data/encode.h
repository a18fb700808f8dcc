// Documents -> model inputs: token ids with [CLS]/[SEP], tag matrices, windows and the
// offsets that map predictions back to characters. Plain vectors, no torch types: the
// training code wraps them in tensors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "workers/data/document.h"
#include "workers/data/tagging.h"
#include "workers/data/tokenizer.h"
#include "workers/data/windows.h"

namespace kdx::data {

constexpr int kIgnoreTag = -100;  // [CLS], [SEP] and padding rows: no loss, no prediction

struct EncodedDoc {
  std::string id;
  std::vector<Token> tokens;
  std::vector<int> tags;           // [tokens x columns]
  std::vector<std::string> words;  // per token, its word as the text writes it (token_words)
};

// One window of one document, as the model sees it.
struct Example {
  int doc = 0;
  Window window;
  std::vector<int> ids;   // [CLS] tokens... [SEP]
  std::vector<int> tags;  // [ids.size() x columns], kIgnoreTag on [CLS]/[SEP]
  bool labelled = true;   // false: unlabelled text, every tag kIgnoreTag, distillation only
  // Per id, the row of its word in the model's word-vector table (0: none, [CLS], [SEP]);
  // empty for a model without word vectors (assign_word_rows fills it).
  std::vector<int> words;
};

// Cells (token x tag column) with a gold tag, and cells the teacher is matched on: the
// labelled cells of a labelled window, every real token's cells of an unlabelled one.
long labelled_cells(const Example& ex);
long distillation_cells(const Example& ex);

struct EncodedDataset {
  TagScheme scheme;
  std::vector<EncodedDoc> docs;
  std::vector<Example> examples;
  long total_tokens() const;
};

EncodedDataset encode_dataset(const std::vector<Document>& docs, const Tokenizer& tokenizer,
                              const TagScheme& scheme, int window);
// Appends `docs` as unlabelled examples (labelled = false, every tag kIgnoreTag) after the
// examples already in `data`, as the logits stage and distilling students both do.
void append_unlabelled(EncodedDataset& data, const std::vector<Document>& docs,
                       const Tokenizer& tokenizer, int window);

// A padded batch, row-major: ids/mask [size x len], tags and kd_mask [size x len x columns].
struct Batch {
  int size = 0, len = 0, columns = 0;
  std::vector<int64_t> ids, mask, tags;
  std::vector<uint8_t> kd_mask;  // 1 = a distillation cell (see distillation_cells)
  std::vector<int64_t> words;    // [size x len] word-vector rows; empty without word vectors
  std::vector<int> examples;     // which examples, in row order
};
Batch make_batch(const EncodedDataset& data, const std::vector<int>& examples, int pad_id);

// Stitches per-example tag predictions ([ids.size() x columns] each, indexed like
// data.examples) back into documents with character-span entities.
std::vector<Document> decode_predictions(const EncodedDataset& data,
                                         const std::vector<std::vector<int>>& example_tags);

// How many gold entities survive encode -> decode unchanged.
struct RoundTrip {
  long gold = 0, survived = 0;
  double fraction() const {
    return gold ? static_cast<double>(survived) / static_cast<double>(gold) : 1.0;
  }
};
RoundTrip round_trip(const std::vector<Document>& docs, const Tokenizer& tokenizer,
                     const TagScheme& scheme);

// The entity types of a dataset, sorted (for RuNNE from ners.txt when present).
std::vector<std::string> types_of(const std::vector<Document>& docs);

}  // namespace kdx::data
