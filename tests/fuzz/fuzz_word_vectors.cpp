// Word vectors as kdx reads them: the first byte picks the format (navec's tar with its
// gzip'ed vocabulary and product quantization, or the word2vec/fastText text format), the
// rest is the file. A vector that is read back must lie within the file's own bounds.
#include <vector>

#include "common/error.h"
#include "workers/data/word_vectors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    auto v = (data[0] & 1) ? kdx::data::parse_navec(bytes, "fuzz.tar")
                           : kdx::data::parse_text_vectors(bytes, "fuzz.txt");
    std::vector<float> out(static_cast<size_t>(v.dim));
    for (uint32_t r = 0; r < v.size() && r < 64; ++r) v.vector(r, out.data());
    if (!v.words.empty()) v.find(v.words.front());
  } catch (const kdx::Error&) {
  }
  return 0;
}
