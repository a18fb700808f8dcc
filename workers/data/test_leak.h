// Test leakage: text that a model learns from without labels (a pretraining corpus, the
// unlabelled text of distillation) must not contain the test documents it is scored on.
// kdx refuses such a file when the experiment is submitted and again in the worker.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "workers/data/document.h"

namespace kdx::data {

struct TestSplit {
  std::string dataset, format;
  std::vector<std::string> files;  // read together (RuNNE: texts + answers)
};

struct Leak {
  std::string file;      // the unlabelled file
  std::string document;  // its document id
  std::string dataset;   // whose test split holds the same text
  std::string message() const;
};

// Documents count as the same when their texts agree after trimming surrounding white
// space. Reads every file; throws kdx::Error for unreadable ones.
std::optional<Leak> find_test_leak(const std::vector<std::string>& unlabelled_files,
                                   const std::vector<TestSplit>& tests);

}  // namespace kdx::data
