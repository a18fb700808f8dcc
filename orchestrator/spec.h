// Spec: the plain-data state of one experiment file, filled by parse_spec() and handed
// to expand_grid() and plan(). Nothing here knows about runs, hashes or executors.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/error.h"
#include "orchestrator/resources.h"

namespace kdx {

struct DatasetSpec {
  std::string name;
  std::string format;  // runne | rurebus | conll
  // split (train|dev|test|unlabeled) -> files, as written (relative to the data root) and
  // absolute. `unlabeled`: the dataset's text without labels, for distillation.
  std::map<std::string, std::vector<std::string>> splits;
  std::map<std::string, std::vector<std::string>> resolved_splits;
  SourceLocation loc;
};

// One dimension of `grid:` or `zip:`: a parameter name and its values in file order.
struct Axis {
  std::string key;
  std::vector<nlohmann::json> values;
  SourceLocation loc;
};

struct Distribution {
  std::string kind;  // choice | uniform | loguniform | int
  std::vector<nlohmann::json> args;
};

struct RandomSpec {
  int samples = 0;
  uint64_t seed = 0;
  std::vector<std::pair<std::string, Distribution>> params;  // file order
};

struct StudentSpec {
  nlohmann::json fixed = nlohmann::json::object();
  std::vector<Axis> grid;
  std::vector<Axis> zip;
  std::vector<nlohmann::json> exclude;  // key -> value or list of values (any of)
  std::vector<nlohmann::json> include;  // extra points, merged over `fixed`
  RandomSpec random;
  Resources resources;
};

struct TeacherSpec {
  nlohmann::json params = nlohmann::json::object();
  std::string checkpoint;  // a finished teacher: no teacher stage is run
  Resources resources;
};

// The optional pretrain stage: masked-language-model training of the teacher's encoder on
// unlabelled text, from scratch or continuing `init_from`; the teachers fine-tune its result.
struct PretrainSpec {
  bool enabled = false;
  nlohmann::json params = nlohmann::json::object();
  std::vector<std::string> corpus, resolved_corpus;  // as written / absolute
  Resources resources;
};

struct WorkerSpec {
  // {run_json}, {run_dir}, {run_id}, {stage} are replaced per run.
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::vector<std::string> setup;  // shell lines run before the worker (modules, venv)
  std::string sbatch_template;     // overrides slurm/job.sbatch for this experiment
};

struct Spec {
  std::string file;
  std::string experiment;
  std::string data_root;
  std::vector<DatasetSpec> datasets;
  PretrainSpec pretrain;
  TeacherSpec teacher;
  nlohmann::json logits = nlohmann::json::object();  // logits-stage parameters
  Resources logits_resources;
  StudentSpec students;
  WorkerSpec worker;
};

struct SpecOptions {
  std::string data_dir;          // --data-dir; empty = KDX_DATA_DIR, ../shared/data, data/
  bool check_data_files = true;  // a missing file is an error naming `kdx data fetch`
};

// Parses and validates an experiment file. Throws kdx::Error with "file:line:col: key.path: ...".
Spec parse_spec(const std::string& path, const SpecOptions& options = {});
Spec parse_spec_text(const std::string& text, const std::string& file_name,
                     const SpecOptions& options = {});

// The data root: --data-dir, else $KDX_DATA_DIR, else the first of ../shared/data, data/ that
// exists.
std::string resolve_data_root(const std::string& data_dir_option);

}  // namespace kdx
