// What the stages share: trainer options from run.json, the test-set finish (F1, size,
// latency on the CPU and on the run's GPU, device facts) and the teacher directory helpers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "workers/models/tagger.h"
#include "workers/training/objective.h"
#include "workers/training/prepare.h"
#include "workers/training/stages.h"
#include "workers/training/trainer.h"

namespace kdx::training::stages {

double file_mb(const std::string& path);
TrainerOptions trainer_options(const RunSpec& spec, const StageOptions& so);
Objective objective_of(const RunSpec& spec);

// The trained model's best held-out weights, when the trainer kept any.
void load_best(torch::nn::Module& model, const RunSpec& spec);
void write_model_files(models::TaggerImpl& tagger, const std::string& dir,
                       const std::vector<std::string>& types);
// What every training stage reports about where and how fast it ran.
nlohmann::json training_metrics(const RunSpec& spec, const StageOptions& so, const Trainer& trainer,
                                const TrainingState& state, int world);
// Test-set evaluation, predictions file, size, latency, then result.json (rank 0). Moves
// the tagger to the CPU for the CPU latency: call it last.
void finish(const RunSpec& spec, models::TaggerImpl& tagger, Prepared& p, const StageOptions& so,
            nlohmann::json metrics, const Trainer& trainer, const TrainingState& state, int world);
void write_result(const RunSpec& spec, const nlohmann::json& metrics,
                  const nlohmann::json& warnings, const nlohmann::json& files);

std::vector<std::string> read_types(const std::string& dir);
// The finished teacher of a teacher_dir: its tagger, with weights, on the CPU.
models::Tagger load_teacher(const std::string& dir);
void check_finished_teacher(const std::string& dir);

}  // namespace kdx::training::stages
