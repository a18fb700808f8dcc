// What the stages share: trainer options from run.json, the test-set finish (F1, size,
// latency on the CPU and on the run's GPU, device facts) and the teacher directory helpers.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "workers/decoding/decode.h"
#include "workers/models/student.h"
#include "workers/models/tagger.h"
#include "workers/training/objective.h"
#include "workers/training/prepare.h"
#include "workers/training/stages.h"
#include "workers/training/trainer.h"

namespace kdx::training::stages {

double file_mb(const std::string& path);
TrainerOptions trainer_options(const RunSpec& spec, const StageOptions& so);
Objective objective_of(const RunSpec& spec);
// params.decoding of the dev and test evaluation; greedy when absent (run.json files older
// than the parameter), so their scores reproduce.
decoding::Decoder decoder_of(const RunSpec& spec);

// The trained model's best held-out weights, when the trainer kept any.
void load_best(torch::nn::Module& model, const RunSpec& spec);
// With word vectors (p.words.dim > 0) also the word list, vectors.txt.
void write_model_files(models::TaggerImpl& tagger, const std::string& dir,
                       const std::vector<std::string>& types,
                       const data::WordTable& words = data::WordTable());

// The word list beside a model that reads word vectors.
constexpr const char* kWordListFile = "vectors.txt";
// params.vectors of `spec`, when set: the vectors file read, the table of the words that
// every split of `p` (unlabelled text included) uses kept in p.words, and each split's word
// rows assigned. Call after encode_all.
void prepare_word_vectors(const RunSpec& spec, Prepared& p);
// A finished model in `dir` that reads word vectors (`rows` > 0): its word list as p.words,
// every split's rows assigned from it. rows == 0: nothing.
void use_model_word_list(const std::string& dir, int rows, Prepared& p);
// What every training stage reports about where and how fast it ran.
nlohmann::json training_metrics(const RunSpec& spec, const StageOptions& so, const Trainer& trainer,
                                const TrainingState& state, int world);
// `tagger` on p.test (decoded by `decoder`): the shared task's scores into `metrics`, the
// predictions (a file or, for RuREBus, a folder) and scores.json into run_dir; returns the
// predictions' path.
std::string score_on_test(models::TaggerImpl& tagger, const Prepared& p, const std::string& format,
                          const std::string& run_dir, decoding::Decoder decoder,
                          torch::Device device, nlohmann::json& metrics);
// Test-set evaluation, predictions file, size, latency, then result.json (rank 0). Moves
// the tagger to the CPU for the CPU latency: call it last.
void finish(const RunSpec& spec, models::TaggerImpl& tagger, Prepared& p, const StageOptions& so,
            nlohmann::json metrics, const Trainer& trainer, const TrainingState& state, int world);
void write_result(const RunSpec& spec, const nlohmann::json& metrics,
                  const nlohmann::json& warnings, const nlohmann::json& files);

// <dir>/types.json: the classes' entity types, in order. Throws "<path>: <reason>".
std::vector<std::string> read_types(const std::string& dir);
// <dir>/model.json, parsed and checked to be an object; throws "<path>: <reason>".
nlohmann::json read_model_json(const std::string& dir);
// The finished teacher of a teacher_dir: its tagger, with weights, on the CPU.
models::Tagger load_teacher(const std::string& dir);
void check_finished_teacher(const std::string& dir);

// The student stages (student, student_kd, student_finetune): the dataset encoded with the
// teacher's tokenizer and tag layout (checked against the teacher's model.json).
void prepare_student_data(const RunSpec& spec, Prepared& p);
// params.sampler: empty (the trainer's shuffle) or the entity-balanced order.
std::function<std::vector<int>(int)> training_order(const RunSpec& spec, const Prepared& p);
// Trains `student` on `objective` (the logits cache opened when it has a KD term), in
// `order` (empty = shuffle), then writes the model files and result.json (rank 0);
// `extra_metrics` go into result.json too.
void train_student(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so,
                   Prepared& p, std::shared_ptr<models::StudentTaggerImpl> student,
                   Objective objective, std::function<std::vector<int>(int)> order,
                   nlohmann::json extra_metrics);

}  // namespace kdx::training::stages
