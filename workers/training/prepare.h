// What every stage of one dataset must agree on, computed the same way by each: the
// training documents and their dev hold-out, the entity types, the tokenizer files of the
// teacher, and the key that ties a logits cache to all of them. Torch-free.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "workers/data/encode.h"
#include "workers/data/word_table.h"
#include "workers/training/run_spec.h"

namespace kdx::training {

struct Prepared {
  std::vector<data::Document> train_docs, dev_docs, test_docs;
  std::vector<data::Document> unlabeled_docs;  // the run's unlabeled files (KD only)
  std::vector<std::string> types;
  std::unique_ptr<data::Tokenizer> tokenizer;
  data::TagScheme scheme;
  data::EncodedDataset train, dev, test;
  // A model that reads word vectors: its table (dim 0: none); every split's word rows
  // assigned from it.
  data::WordTable words;
  data::WordCoverage coverage;  // of the training split's tokens
};

// Reads the dataset of `spec`: the first max_train_docs training documents, every tenth of
// them held out as dev (when there are at least 10; dataset.dev, when given, is the dev split
// instead and nothing is held out), and the test split. `p.types`, when set (a teacher's
// types.json), are the classes every entity of every split must have; when empty they are
// set here to dataset_types() and check the dev and test splits. Errors: an entity of an
// unknown type (file and line, or document id), an empty split, and fewer than 10 training
// documents without a dev file when the run stops early or schedules its rate on dev F1.
void read_documents(const RunSpec& spec, Prepared& p);
// Entity types: RuNNE's ners.txt, RuREBus's fixed eight, else those in the training data.
std::vector<std::string> dataset_types(const RunSpec& spec,
                                       const std::vector<data::Document>& train);
// Tokenizes and encodes all three splits with `p.tokenizer` and `p.scheme`; unlabelled
// documents are appended to `p.train` as distillation-only examples.
void encode_all(const RunSpec& spec, Prepared& p);

// Teacher-side tokenizer files in a checkpoint directory: vocab.txt + tokenizer_config.json.
void save_tokenizer(const data::Tokenizer& tok, const std::string& dir);
std::unique_ptr<data::Tokenizer> load_tokenizer(const std::string& dir);

// sha256 over teacher weights, vocabulary, training files and encoding settings.
std::string logits_key(const RunSpec& spec, const std::string& teacher_dir);

}  // namespace kdx::training
