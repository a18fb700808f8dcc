// Long documents -> windows of at most N tokens ([CLS] and [SEP] included), cut on
// sentence boundaries where possible. Every token lands in exactly one window, so
// per-window predictions stitch back into one tag sequence per document.
#pragma once

#include <vector>

#include "workers/data/tokenizer.h"

namespace kdx::data {

struct Window {
  int first = 0;  // index of the first document token in this window
  int count = 0;  // document tokens in the window (without [CLS]/[SEP])
};

// `text` is needed to see newlines between tokens (a sentence boundary too).
std::vector<Window> make_windows(const std::vector<Token>& tokens, const std::u32string& text,
                                 const Vocab& vocab, int max_tokens);

}  // namespace kdx::data
