// Builds a WordPiece vocab.txt from a corpus, for teachers trained from scratch.
// Frequency-based: special tokens, every character seen (alone and as ##continuation),
// then the most frequent words, word-initial prefixes and ##suffixes until the size is
// reached. Not Hugging Face's likelihood-based trainer, but its output is a valid
// vocab.txt that Tokenizer (and BertTokenizer) use unchanged.
#pragma once

#include <string>
#include <vector>

#include "workers/data/document.h"
#include "workers/data/tokenizer.h"
#include "workers/data/vocab.h"

namespace kdx::data {

Vocab build_vocab(const std::vector<Document>& corpus, size_t vocab_size,
                  const TokenizerOptions& options);

}  // namespace kdx::data
