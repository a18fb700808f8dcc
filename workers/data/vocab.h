// A WordPiece vocabulary: vocab.txt, one token per line, id = line number.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace kdx::data {

struct Vocab {
  std::vector<std::string> tokens;
  std::unordered_map<std::string, int> ids;

  int id(const std::string& token) const {
    auto it = ids.find(token);
    return it == ids.end() ? -1 : it->second;
  }
  int unk() const { return id("[UNK]"); }
  int pad() const { return id("[PAD]"); }
  int cls() const { return id("[CLS]"); }
  int sep() const { return id("[SEP]"); }
  size_t size() const { return tokens.size(); }
  void add(const std::string& token);
};

// Throws kdx::Error naming the file when it is missing, empty, or lacks [UNK]/[CLS]/[SEP]/[PAD].
Vocab load_vocab(const std::string& path);
void save_vocab(const Vocab& vocab, const std::string& path);  // atomic

}  // namespace kdx::data
