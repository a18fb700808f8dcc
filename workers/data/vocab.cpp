#include "workers/data/vocab.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/strings.h"

namespace kdx::data {

void Vocab::add(const std::string& token) {
  if (ids.count(token)) return;
  ids[token] = static_cast<int>(tokens.size());
  tokens.push_back(token);
}

Vocab load_vocab(const std::string& path) {
  Vocab v;
  auto lines = split(read_input(path, InputKind::Data), '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  for (auto& l : lines) {
    std::string t = l;
    if (!t.empty() && t.back() == '\r') t.pop_back();
    // A token listed twice maps to its last line, as in Hugging Face's load_vocab (a dict
    // filled line by line).
    v.ids[t] = static_cast<int>(v.tokens.size());
    v.tokens.push_back(t);
  }
  if (v.tokens.empty()) throw Error(path + ": empty vocabulary");
  for (auto special : {"[UNK]", "[CLS]", "[SEP]", "[PAD]"})
    if (v.id(special) < 0)
      throw Error(path + ": vocabulary has no " + std::string(special) + " token");
  return v;
}

void save_vocab(const Vocab& vocab, const std::string& path) {
  std::string out;
  for (auto& t : vocab.tokens) out += t + "\n";
  write_file_atomic(path, out);
}

}  // namespace kdx::data
