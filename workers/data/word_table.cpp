#include "workers/data/word_table.h"

#include <algorithm>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"

namespace kdx::data {

namespace {
constexpr const char* kWordListHeader = "kdx-word-list 1";
}

int WordTable::row_of(const std::string& text_word) const {
  for (auto& s : spellings(text_word))
    if (auto it = rows.find(s); it != rows.end()) return it->second;
  return 0;
}

std::vector<std::string> token_words(const std::u32string& text, const std::vector<Token>& tokens) {
  std::vector<std::string> out(tokens.size());
  for (size_t i = 0; i < tokens.size();) {
    size_t j = i + 1;
    if (tokens[i].word >= 0)
      while (j < tokens.size() && tokens[j].word == tokens[i].word) ++j;
    int start = std::max(0, tokens[i].start);
    int end = std::min<int>(static_cast<int>(text.size()), tokens[j - 1].end);
    std::string w =
        end > start
            ? encode_utf8(text.substr(static_cast<size_t>(start), static_cast<size_t>(end - start)))
            : std::string();
    for (size_t k = i; k < j; ++k) out[k] = w;
    i = j;
  }
  return out;
}

WordTable build_word_table(const WordVectors& vectors,
                           const std::vector<const EncodedDataset*>& sets) {
  WordTable t;
  t.dim = vectors.dim;
  std::vector<float> row(static_cast<size_t>(vectors.dim));
  for (const auto* set : sets)
    for (auto& doc : set->docs)
      for (auto& w : doc.words) {
        auto r = vectors.find(w);
        if (!r) continue;
        const std::string& spelling = vectors.words[*r];
        if (t.rows.count(spelling)) continue;
        t.words.push_back(spelling);
        t.rows.emplace(spelling, static_cast<int>(t.words.size()));
        vectors.vector(*r, row.data());
        t.vectors.insert(t.vectors.end(), row.begin(), row.end());
      }
  return t;
}

WordCoverage assign_word_rows(EncodedDataset& data, const WordTable& table) {
  WordCoverage cov;
  std::vector<std::vector<int>> doc_rows(data.docs.size());
  for (size_t d = 0; d < data.docs.size(); ++d) {
    auto& words = data.docs[d].words;
    doc_rows[d].reserve(words.size());
    for (auto& w : words) {
      int r = table.row_of(w);
      doc_rows[d].push_back(r);
      cov.tokens += 1;
      cov.found += r > 0;
    }
  }
  for (auto& ex : data.examples) {
    const auto& rows = doc_rows[static_cast<size_t>(ex.doc)];
    ex.words.assign(ex.ids.size(), 0);
    for (int i = 0; i < ex.window.count; ++i) {
      size_t tok = static_cast<size_t>(ex.window.first + i);
      if (tok < rows.size()) ex.words[static_cast<size_t>(i + 1)] = rows[tok];
    }
  }
  return cov;
}

void write_word_list(const WordTable& table, const std::string& path) {
  std::string out = std::string(kWordListHeader) + "\n";
  for (auto& w : table.words) out += w + "\n";
  write_file_atomic(path, out);
}

WordTable read_word_list(const std::string& path, int dim) {
  std::string text = read_input(path, InputKind::Data);
  WordTable t;
  t.dim = dim;
  size_t pos = 0;
  int line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string w = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (line == 1) {
      if (w != kWordListHeader)
        throw Error(path + ":1: not a kdx word list (expected \"" + kWordListHeader + "\")");
      continue;
    }
    if (w.empty()) throw Error(path + ":" + std::to_string(line) + ": empty word");
    if (!t.rows.emplace(w, static_cast<int>(t.words.size()) + 1).second)
      throw Error(path + ":" + std::to_string(line) + ": word '" + w + "' listed twice");
    t.words.push_back(w);
  }
  if (line == 0) throw Error(path + ":1: empty file (expected \"" + kWordListHeader + "\")");
  return t;
}

}  // namespace kdx::data
