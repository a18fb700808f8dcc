// A prediction file scored against a fixed gold document, as `kdx eval` does.
#include "common/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "workers/data/metrics.h"
#include "workers/data/readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string gold_path = [] {
    std::string p = kdx::fuzz::scratch("-gold.jsonl");
    std::ofstream(p) << "{\"id\": 0, \"sentences\": \"Anna met Boris in Kazan.\", \"ners\": "
                        "[[0, 3, \"PER\"], [9, 13, \"PER\"], [18, 22, \"CITY\"]]}\n";
    return p;
  }();
  auto path = kdx::fuzz::write_scratch(data, size, "-pred.jsonl");
  try {
    auto gold = kdx::data::read_runne({gold_path}, {}, true);
    std::vector<std::string> warnings;
    auto pred = kdx::data::read_runne({path}, {}, false, &warnings);
    kdx::data::score_runne(gold, pred, {"CITY", "PER"});
  } catch (const kdx::Error&) {
  }
  return 0;
}
