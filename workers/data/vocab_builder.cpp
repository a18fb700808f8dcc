#include "workers/data/vocab_builder.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace kdx::data {

Vocab build_vocab(const std::vector<Document>& corpus, size_t vocab_size,
                  const TokenizerOptions& options) {
  Vocab v;
  for (auto s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v.add(s);
  std::unordered_map<std::u32string, long> words;
  for (auto& d : corpus)
    for (auto& w : basic_tokenize(d.text, options)) ++words[w.text];
  // Characters first: with them every word is representable, so no [UNK] on the corpus.
  std::map<char32_t, long> chars;
  for (auto& [w, n] : words)
    for (char32_t c : w) chars[c] += n;
  std::vector<std::pair<long, std::string>> scored;
  for (auto& [c, n] : chars) scored.emplace_back(n, encode_utf8(c));
  std::sort(scored.begin(), scored.end(), [](auto& a, auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (auto& [n, c] : scored) v.add(c);
  for (auto& [n, c] : scored) v.add("##" + c);
  // Candidates: whole words, word-initial prefixes and ## suffixes, weighted by frequency
  // and by the characters they save.
  std::unordered_map<std::string, double> cand;
  for (auto& [w, n] : words) {
    if (w.size() < 2) continue;
    cand[encode_utf8(w)] += static_cast<double>(n) * static_cast<double>(w.size());
    for (size_t len = 2; len < w.size() && len <= 8; ++len) {
      cand[encode_utf8(w.substr(0, len))] +=
          0.5 * static_cast<double>(n) * static_cast<double>(len);
      cand["##" + encode_utf8(w.substr(w.size() - len))] +=
          0.5 * static_cast<double>(n) * static_cast<double>(len);
    }
  }
  std::vector<std::pair<double, std::string>> ranked(cand.size());
  size_t i = 0;
  for (auto& [piece, score] : cand) ranked[i++] = {score, piece};
  std::sort(ranked.begin(), ranked.end(), [](auto& a, auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (auto& [score, piece] : ranked) {
    if (v.size() >= vocab_size) break;
    v.add(piece);
  }
  return v;
}

}  // namespace kdx::data
