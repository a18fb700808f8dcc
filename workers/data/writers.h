// Prediction files in each dataset's own format, so official scorers read them too.
#pragma once

#include <string>
#include <vector>

#include "workers/data/document.h"

namespace kdx::data {

// RuNNE: one {"id", "ners": [[start, last_char_inclusive, TYPE]]} line per document. Atomic.
void write_runne(const std::vector<Document>& docs, const std::string& path);
// brat: DIR/<id>.ann per document (T lines only). Each file atomic.
void write_brat(const std::vector<Document>& docs, const std::string& dir);
// Dispatch on format; for rurebus `path` is a directory.
void write_predictions(const std::string& format, const std::vector<Document>& docs,
                       const std::string& path);

}  // namespace kdx::data
