#include "workers/data/windows.h"

#include "common/error.h"

namespace kdx::data {

std::vector<Window> make_windows(const std::vector<Token>& tokens, const std::u32string& text,
                                 const Vocab& vocab, int max_tokens) {
  if (max_tokens < 3) throw Error("window must be at least 3 tokens ([CLS] x [SEP])");
  const int room = max_tokens - 2;
  const int n = static_cast<int>(tokens.size());
  // A sentence ends after '.', '!', '?', '…' or where a newline separates two tokens.
  std::vector<bool> ends(static_cast<size_t>(n), false);
  for (int i = 0; i < n; ++i) {
    auto& piece = vocab.tokens[static_cast<size_t>(tokens[static_cast<size_t>(i)].id)];
    if (piece == "." || piece == "!" || piece == "?" || piece == "…")
      ends[static_cast<size_t>(i)] = true;
    if (i + 1 < n)
      for (int c = tokens[static_cast<size_t>(i)].end; c < tokens[static_cast<size_t>(i + 1)].start;
           ++c)
        if (text[static_cast<size_t>(c)] == U'\n') ends[static_cast<size_t>(i)] = true;
  }
  std::vector<Window> out;
  int start = 0;
  while (start < n) {
    int limit = std::min(n, start + room);
    int cut = limit;
    if (limit < n) {
      // The last sentence end inside the window; a window that holds no whole sentence is cut hard.
      for (int i = limit - 1; i >= start; --i)
        if (ends[static_cast<size_t>(i)]) {
          cut = i + 1;
          break;
        }
    }
    out.push_back({start, cut - start});
    start = cut;
  }
  return out;
}

}  // namespace kdx::data
