// RunSpec: the plain-data view of a run.json, the only input a worker reads from the
// orchestrator. Torch-free.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kdx::training {

struct RunSpec {
  std::string path;                   // of run.json
  std::string id, experiment, stage;  // one of kdx::stage_names()
  std::string run_dir, teacher_dir, logits_dir;
  std::string pretrain_dir;  // a teacher's pretrained encoder (the pretrain run), else empty
  std::string student_dir;   // student_finetune: its student_kd run
  std::string vectors_file;  // params.vectors.file resolved (absolute), else empty
  // A teacher ensemble's members, teacher_dir first (logits and student runs); else empty.
  std::vector<std::string> teacher_dirs;
  std::string dataset, format;
  std::map<std::string, std::vector<std::string>> files;  // train / dev / test -> absolute paths
  std::vector<std::string> unlabeled;  // logits and KD students: unlabelled text to distil on
  std::vector<std::string> corpus;     // pretrain: the text to pretrain on
  struct TestSplit {
    std::string dataset, format;
    std::vector<std::string> files;
  };
  std::vector<TestSplit> test_splits;  // pretrain: every test split of the experiment
  nlohmann::json params;               // resolved stage parameters
  int cpus = 1;

  // Typed parameter access; throws kdx::Error "run.json: params.<key>: ..." when absent or
  // mistyped.
  int param_int(const std::string& key) const;
  int64_t param_int64(const std::string& key) const;
  double param_double(const std::string& key) const;
  std::string param_string(const std::string& key) const;
  bool param_bool(const std::string& key) const;
};

// Throws kdx::Error naming the file and the field.
RunSpec read_run_spec(const std::string& path);

}  // namespace kdx::training
