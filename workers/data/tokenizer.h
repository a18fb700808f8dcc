// BERT WordPiece tokenization compatible with Hugging Face's BertTokenizer (basic
// tokenization, then greedy longest-match WordPiece), keeping each token's character
// span in the original text so predictions map back to the document.
#pragma once

#include <string>
#include <vector>

#include "workers/data/vocab.h"

namespace kdx::data {

struct TokenizerOptions {
  bool lowercase = false;
  // Hugging Face: strip accents when lower-casing unless strip_accents is false;
  // -1 = follow lowercase (their default None), 0 = never, 1 = always.
  int strip_accents = -1;
  bool tokenize_chinese_chars = true;
  int max_chars_per_word = 100;
};

struct Token {
  int id = 0;
  int start = 0;  // code points in the original text
  int end = 0;    // exclusive
  // The basic-tokenizer word this piece came from, unique within one text (a special token or
  // an [UNK] word is a word of its own); -1 = unknown (hand-made tokens): a word by itself.
  // Decoders use it to begin and end entities only where words do.
  int word = -1;
};

// Where a piece sits in its word: the word-boundary constraints of the Viterbi decoder.
enum class WordPosition { Single, First, Middle, Last };
// One per token; a token whose `word` is -1 or differs from both neighbours' is Single.
std::vector<WordPosition> word_positions(const std::vector<Token>& tokens);

// Basic tokenization alone: words with their spans, after cleaning, CJK spacing,
// lower-casing/accent stripping and punctuation splitting.
struct Word {
  std::u32string text;  // normalised
  int start = 0, end = 0;
  std::vector<int> origin;  // per character of `text`, its position in the original text
};
std::vector<Word> basic_tokenize(const std::u32string& text, const TokenizerOptions& options);

class Tokenizer {
 public:
  Tokenizer(Vocab vocab, TokenizerOptions options);
  // Special tokens written in the text ([CLS], [SEP], [PAD], [UNK], [MASK] when the vocabulary
  // has them) stay whole, as Hugging Face's tokenizer keeps them; every other stretch of text
  // goes through basic tokenization and WordPiece.
  std::vector<Token> tokenize(const std::u32string& text) const;
  // The pieces as strings ("##" continuation included), for tests and debugging.
  std::vector<std::string> pieces(const std::u32string& text) const;
  const Vocab& vocab() const { return vocab_; }
  const TokenizerOptions& options() const { return options_; }

 private:
  void wordpiece(const Word& w, int word, std::vector<Token>& out) const;
  // `word`: the index the next word gets; advanced past every word of the span.
  void tokenize_span(const std::u32string& text, int begin, int end, int& word,
                     std::vector<Token>& out) const;
  Vocab vocab_;
  TokenizerOptions options_;
  std::vector<std::pair<std::u32string, int>> specials_;  // text, id
};

// Reads tokenizer settings from a Hugging Face checkpoint directory (tokenizer_config.json,
// else config.json hints); defaults to lower-casing only when the files say so.
TokenizerOptions tokenizer_options_from_dir(const std::string& dir);

}  // namespace kdx::data
