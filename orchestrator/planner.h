// Planner: Spec + grid points -> runs with content-addressed ids and a stage DAG.
// Per experiment an optional pretrain run; per dataset: teacher (unless a finished checkpoint
// is given) -> logits cache -> students; a student with `two_phase:` becomes student_kd (on
// the transfer corpus, from the teacher alone) -> student_finetune (on the labelled data).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "orchestrator/resources.h"
#include "orchestrator/spec.h"

namespace kdx {

struct PlannedRun {
  std::string id;
  std::string stage;  // one of stage_names() (common/params.h)
  std::string dataset;
  nlohmann::json config;          // the identity: canonical, hashed into `id`
  std::vector<std::string> deps;  // ids of runs that must be COMPLETED first
  Resources resources;
  std::string run_dir;       // absolute
  std::string teacher_dir;   // absolute; empty for a teacher
  std::string logits_dir;    // absolute; empty when the run needs no logits
  std::string pretrain_dir;  // absolute; a teacher's pretrained encoder, else empty
  std::string student_dir;   // absolute; student_finetune: its student_kd run, else empty
  // A teacher ensemble's members (absolute), the first being teacher_dir: the logits run and
  // the students that read its cache. Empty for a single teacher.
  std::vector<std::string> teacher_dirs;
  bool unlabeled = false;  // logits and KD students: the dataset's unlabeled text too
};

struct Plan {
  std::string experiment;
  std::string spec_file;
  std::vector<PlannedRun> runs;  // dependencies always come before their dependents
};

// `results_dir` is where run directories go (results/runs/<experiment>/<id>).
Plan make_plan(const Spec& spec, const std::string& results_dir);
// Keeps only the runs of the named datasets (`kdx submit --dataset`), and a pretrain run only
// when a kept teacher reads it. Their ids do not change: a dataset's runs are planned the same
// whether or not the others are. Throws, naming the spec file, for a name the spec lacks.
void keep_datasets(Plan& plan, const Spec& spec, const std::vector<std::string>& names);

// What the worker reads (run.json): config, absolute data paths, directories, resources.
// Built on demand: a plan of 100,000 runs should not hold 100,000 of these.
nlohmann::json make_run_json(const PlannedRun& run, const Spec& spec);
// A vectors.file as the worker opens it: `navec` the cached tar, a relative path under the
// data directory, an absolute one as written.
std::string resolve_vectors_path(const std::string& file, const Spec& spec);

// Keys sorted, numbers normalised, no whitespace: equal configs give equal text.
std::string canonical_json(const nlohmann::json& config);
// Short (12 hex digits) SHA-256 of the canonical config.
std::string run_id_of(const nlohmann::json& config);

// Default values of each stage, merged under what the spec sets.
nlohmann::json teacher_defaults();
nlohmann::json student_defaults();
nlohmann::json logits_defaults();
nlohmann::json pretrain_defaults();
// Per-architecture student defaults (lr, highway_bias), used where the grid sets none.
nlohmann::json architecture_defaults(const std::string& arch);

}  // namespace kdx
