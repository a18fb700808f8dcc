// Pretrained word vectors as kdx reads them, torch-free: navec's tar (Russian news vectors,
// product-quantized: per word `qdim` one-byte indexes into `qdim` codebooks of `centroids`
// sub-vectors) and the word2vec/fastText text format (an optional "N D" header, then one
// "word v1 ... vD" line per word). Both readers check every size against the file before
// they allocate, and every value for being finite.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace kdx::data {

struct WordVectors {
  std::string format;  // "navec" | "text"
  std::string id;      // navec's meta id; the text file's name
  int dim = 0;
  std::vector<std::string> words;  // row -> word
  std::unordered_map<std::string, uint32_t> rows;
  bool lowercase = false;  // every word of the vocabulary is lower case (navec's are)
  // navec: indexes [words x qdim], codes [qdim x centroids x dim/qdim].
  int qdim = 0, centroids = 0;
  std::vector<uint8_t> indexes;
  std::vector<float> codes;
  // text: the vectors themselves, [words x dim].
  std::vector<float> dense;

  size_t size() const { return words.size(); }
  // The vector of a row, dequantized into out[0..dim).
  void vector(uint32_t row, float* out) const;
  // The row of a word as the vocabulary spells words: the word itself, else its lower case,
  // else with ё written е (navec has both spellings for some words only); nullopt when none.
  std::optional<uint32_t> find(const std::string& word) const;
};

// The spellings a vocabulary is searched for, in order: the word as written, its lower case,
// and that with ё written е (each only when it differs from the ones before).
std::vector<std::string> spellings(const std::string& word);

// Throws kdx::Error "<path>: <member>: <what>" for a file that is not a navec tar.
WordVectors read_navec(const std::string& path);
// Throws kdx::Error "<path>:<line>: <what>" for a malformed line.
WordVectors read_text_vectors(const std::string& path);
// format: "navec" | "text".
WordVectors read_word_vectors(const std::string& path, const std::string& format);

// The parsers behind the readers, on bytes in memory (the fuzz targets call these).
WordVectors parse_navec(const std::string& tar_bytes, const std::string& where);
WordVectors parse_text_vectors(const std::string& text, const std::string& where);

}  // namespace kdx::data
