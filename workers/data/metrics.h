// The shared tasks' scores, computed exactly as their official scorers do, so that the
// worker's end-of-training F1, `kdx eval` and `kdx report` are the official numbers.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "workers/data/document.h"

namespace kdx::data {

struct Prf {
  double precision = 0, recall = 0, f1 = 0;
  long tp = 0, fp = 0, fn = 0;
};

struct NerScores {
  Prf mention;                   // micro over all entities
  double macro_f1 = 0;           // RuNNE: mean over types with gold, few-shot excluded
  double macro_f1_few_shot = 0;  // RuNNE: mean over DISEASE, PENALTY, WORK_OF_ART
  std::map<std::string, Prf> per_type;
  nlohmann::json to_json() const;
};

// RuNNE (dialogue-evaluation/RuNNE score.py): documents joined on id; predictions must
// cover exactly the gold ids, one per gold document, with known types; throws kdx::Error otherwise.
NerScores score_runne(const std::vector<Document>& gold, const std::vector<Document>& pred,
                      const std::vector<std::string>& types);

// RuREBus NER: micro and per-type P/R/F1 on exact (start, end, type) spans; documents joined on id.
NerScores score_exact(const std::vector<Document>& gold, const std::vector<Document>& pred,
                      const std::vector<std::string>& types);

// The RuNNE few-shot types.
const std::vector<std::string>& runne_few_shot_types();

}  // namespace kdx::data
