// RuREBus: a zip of brat .txt/.ann pairs, as training data and as predictions.
#include "common/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "workers/data/readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto path = kdx::fuzz::write_scratch(data, size, ".zip");
  try {
    kdx::data::read_brat({path}, kdx::data::rurebus_types(), true);
  } catch (const kdx::Error&) {
  }
  try {
    std::vector<std::string> warnings;
    kdx::data::read_brat({path}, {}, false, &warnings);
  } catch (const kdx::Error&) {
  }
  return 0;
}
