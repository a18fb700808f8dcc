// Masked-language-model pretraining of a small BERT on unlabeled text (the teacher's
// encoder when no pretrained checkpoint exists), never on an experiment's test text.
#include <optional>

#include "common/atomic_file.h"
#include "common/error.h"
#include "workers/data/readers.h"
#include "workers/data/test_leak.h"
#include "workers/data/vocab_builder.h"
#include "workers/models/bert_mlm.h"
#include "workers/models/hf_checkpoint.h"
#include "workers/training/mlm_task.h"
#include "workers/training/stages/common.h"

namespace kdx::training {

void run_pretrain(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  using namespace stages;
  std::vector<data::Document> corpus;
  for (auto& f : spec.corpus)
    for (auto& d : data::read_texts(f)) corpus.push_back(std::move(d));
  if (corpus.empty()) throw Error(spec.path + ": the pretraining corpus has no documents");
  std::vector<data::TestSplit> tests;
  for (auto& t : spec.test_splits) tests.push_back({t.dataset, t.format, t.files});
  if (auto leak = data::find_test_leak(spec.corpus, tests))
    throw Error(spec.path + ": corpus: " + leak->message());

  std::string init = spec.params.value("init_from", std::string());
  std::unique_ptr<data::Tokenizer> tokenizer;
  models::BertConfig c;
  std::optional<models::HfCheckpoint> ck;
  if (!init.empty()) {
    ck = models::read_hf_checkpoint(init);
    c = ck->config;
    tokenizer = load_tokenizer(init);
  } else {
    data::TokenizerOptions to;
    to.lowercase = spec.param_bool("lowercase");
    tokenizer = std::make_unique<data::Tokenizer>(
        data::build_vocab(corpus, static_cast<size_t>(spec.param_int("vocab_size")), to), to);
    c.vocab_size = static_cast<int>(tokenizer->vocab().size());
    c.hidden = spec.param_int("hidden");
    c.layers = spec.param_int("layers");
    c.heads = spec.param_int("heads");
    c.intermediate = spec.param_int("ffn");
    c.max_position = std::max(512, spec.param_int("window"));
    c.initializer_range = spec.params.value("init_range", 0.02);
    if (c.hidden % c.heads != 0)
      throw Error(spec.path + ": params.hidden must be a multiple of params.heads");
  }
  c.dropout = c.attention_dropout = spec.param_double("dropout");
  if (tokenizer->vocab().id("[MASK]") < 0)
    throw Error((init.empty() ? spec.path : init + "/vocab.txt") +
                ": the vocabulary has no [MASK] token, which masked-language pretraining needs");
  torch::manual_seed(static_cast<uint64_t>(spec.param_int64("seed")));
  auto model = models::BertMlm(c);
  if (ck) models::load_hf_weights(*model, *ck, init, "cls.");
  if (reducer.rank == 0) save_tokenizer(*tokenizer, spec.run_dir);

  auto data =
      make_mlm_data(corpus, *tokenizer, spec.param_int("window"), spec.param_int("heldout_every"));
  MlmOptions mo;
  mo.mask_prob = spec.param_double("mask_prob");
  mo.whole_word = spec.param_bool("whole_word_mask");
  mo.seed = static_cast<uint64_t>(spec.param_int64("seed"));
  mo.exec = so.exec;
  MlmTask task(model, data, mo);
  Trainer trainer(model.ptr(), task, trainer_options(spec, so), reducer);
  auto state = trainer.run();
  if (reducer.rank != 0) return;
  load_best(*model, spec);
  models::save_mlm_checkpoint(*model, spec.run_dir);
  nlohmann::json metrics = training_metrics(spec, so, trainer, state, reducer.world);
  metrics.update({{"mlm_accuracy", state.best_score},
                  {"corpus_docs", corpus.size()},
                  {"train_windows", data.train.size()},
                  {"heldout_windows", data.heldout.size()},
                  {"train_tokens_per_epoch", data.train_tokens()},
                  {"vocab_size", c.vocab_size},
                  {"params", models::parameter_count(*model->bert)}});
  write_result(spec, metrics, nlohmann::json::array(),
               {{"model", spec.run_dir + "/model.safetensors"}});
}

}  // namespace kdx::training
