// Dataset readers: RuNNE jsonl, brat standoff (RuREBus; zips or folders), CoNLL BIO.
// Every error names the file and line (for zips: archive:member:line).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "workers/data/document.h"

namespace kdx::data {

// RuNNE: lines {"id", "sentences", "ners": [[start, last_char_inclusive, TYPE], ...]}.
// Several files merge by id, so test.jsonl (texts) and test_with_answers.jsonl (entities)
// read together. `types` empty = accept any type.
// `span_warnings` given (predictions): an entity whose span is impossible (ends before it
// starts, negative, past the text) is kept and reported there instead of being an error, as
// the shared task's scorer counts it (a false positive), not refuses the file.
std::vector<Document> read_runne(const std::vector<std::string>& files,
                                 const std::set<std::string>& types = {}, bool require_text = true,
                                 std::vector<std::string>* span_warnings = nullptr);
// The type list shipped beside a RuNNE file (ners.txt in the same folder); empty if absent.
std::set<std::string> runne_types_near(const std::string& file);

// brat: NAME.txt + NAME.ann pairs inside each zip or folder; `T` lines become entities,
// relation/attribute/note lines are skipped. For training data (`require_pairs`) a .txt
// without .ann is an error; for predictions an .ann may come alone (spans are then not
// checked against a text).
std::vector<Document> read_brat(const std::vector<std::string>& sources,
                                const std::set<std::string>& types = {}, bool require_pairs = true,
                                std::vector<std::string>* span_warnings = nullptr);

// CoNLL: "token<TAB>tag" lines, blank line between sentences, BIO or IOB2 tags; each
// sentence becomes a document whose text joins tokens with single spaces. `types` empty =
// accept any type.
std::vector<Document> read_conll(const std::vector<std::string>& files,
                                 const std::set<std::string>& types = {});

// Dispatch on format name (runne | rurebus | conll). Every entity's type must be one of
// `types` ("<file>:<line>: unknown entity type 'X' (known: ...)"); empty = the dataset's own
// definition: RuNNE's ners.txt beside the first file (any type when there is none), the
// RuREBus eight, any type for CoNLL.
std::vector<Document> read_dataset(const std::string& format, const std::vector<std::string>& files,
                                   const std::set<std::string>& types = {});

// "A, B, C" for an unknown-type message; past 12 types the first 10 and "... (29 in all)".
std::string known_types(const std::set<std::string>& types);

// The text of every document in `path`, labels dropped, for unlabelled use (pretraining,
// distillation on unlabelled text). By the path: *.jsonl (RuNNE lines, "sentences" field),
// *.zip or a folder (brat .txt files, with or without .ann), *.conll; any other file is
// one plain-text document.
std::vector<Document> read_texts(const std::string& path);

// The RuREBus types (fixed by the shared task).
const std::set<std::string>& rurebus_types();

}  // namespace kdx::data
