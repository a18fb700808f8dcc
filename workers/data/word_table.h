// Pretrained word vectors as a model input: the rows of a vector vocabulary (navec, or a
// word2vec/fastText text file) that a run's texts use, and for every wordpiece the row of the
// word it came from (BERT's basic-tokenizer words, read from the original text, so case and
// ё reach the vectors' own spelling rules). Row 0 is every word the table lacks (and [CLS],
// [SEP], padding): the model learns one vector for it. Torch-free.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "workers/data/encode.h"
#include "workers/data/word_vectors.h"

namespace kdx::data {

struct WordTable {
  int dim = 0;
  std::vector<std::string> words;             // row r (1-based) is words[r - 1]
  std::unordered_map<std::string, int> rows;  // a vectors-vocabulary spelling -> row
  std::vector<float> vectors;                 // [words.size() x dim]; empty when loaded
  int size() const { return static_cast<int>(words.size()) + 1; }  // with row 0
  // The row of a word of the text: the first of its spellings() the table holds, else 0.
  int row_of(const std::string& text_word) const;
};

// Per token, its word as the text writes it (UTF-8): the characters from the first to the
// last piece of its basic-tokenizer word.
std::vector<std::string> token_words(const std::u32string& text, const std::vector<Token>& tokens);

// The rows of `vectors` that the documents of `sets` use, in the order they are first met.
WordTable build_word_table(const WordVectors& vectors,
                           const std::vector<const EncodedDataset*>& sets);

// Fills every example's `words` (one row per id, 0 on [CLS]/[SEP]) from its document's words.
struct WordCoverage {
  long tokens = 0, found = 0;
  double fraction() const {
    return tokens ? static_cast<double>(found) / static_cast<double>(tokens) : 0;
  }
};
WordCoverage assign_word_rows(EncodedDataset& data, const WordTable& table);

// The table's vocabulary beside a model ("vectors.txt": a version line, then one word per
// row from row 1), so that the model reads new text with the rows it was trained on.
void write_word_list(const WordTable& table, const std::string& path);
// Throws kdx::Error "<path>:<line>: <what>".
WordTable read_word_list(const std::string& path, int dim);

}  // namespace kdx::data
