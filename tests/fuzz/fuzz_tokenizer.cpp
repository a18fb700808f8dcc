// UTF-8 decoding and BERT tokenization of arbitrary text: spans inside the text, ordered.
#include "common/error.h"
#include "workers/data/document.h"
#include "workers/data/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const kdx::data::Tokenizer* cased = nullptr;
  static const kdx::data::Tokenizer* lower = nullptr;
  if (!cased) {
    kdx::data::Vocab v;
    for (auto t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "мир", "##а", "м", "##и", "##р",
                   "a", "##b", "ab", ",", "."})
      v.add(t);
    cased = new kdx::data::Tokenizer(v, {});
    lower = new kdx::data::Tokenizer(v, {true, -1, true, 100});
  }
  std::u32string text;
  try {
    text = kdx::data::decode_utf8(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const kdx::Error&) {
    return 0;
  }
  for (auto* t : {cased, lower}) {
    int last = 0;
    for (auto& tok : t->tokenize(text)) {
      if (tok.start < last || tok.end <= tok.start || tok.end > static_cast<int>(text.size()))
        __builtin_trap();
      last = tok.start;
    }
  }
  return 0;
}
