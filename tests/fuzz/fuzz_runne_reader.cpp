// RuNNE jsonl as training data (strict) and as unlabelled text.
#include "common/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "workers/data/readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto path = kdx::fuzz::write_scratch(data, size, ".jsonl");
  try {
    kdx::data::read_runne({path}, {"PER", "ORG"}, true);
  } catch (const kdx::Error&) {
  }
  try {
    kdx::data::read_texts(path);
  } catch (const kdx::Error&) {
  }
  return 0;
}
