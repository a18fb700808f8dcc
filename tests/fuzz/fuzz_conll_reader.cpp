// CoNLL BIO files.
#include "common/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "workers/data/readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto path = kdx::fuzz::write_scratch(data, size, ".conll");
  try {
    kdx::data::read_conll({path});
  } catch (const kdx::Error&) {
  }
  return 0;
}
