// The teacher: a BERT tagger fine-tuned from a Hugging Face checkpoint (init_from or the
// experiment's pretrain run) or trained from scratch on a vocabulary built from the data; or
// a recurrent tagger (arch lstm | sru | srupp, the students' model, optionally over
// pretrained word vectors) on such a vocabulary.
#include "common/atomic_file.h"
#include "common/error.h"
#include "workers/data/vocab_builder.h"
#include "workers/models/bert.h"
#include "workers/models/hf_checkpoint.h"
#include "workers/training/stages/common.h"
#include "workers/training/student_init.h"
#include "workers/training/tagging_task.h"

namespace kdx::training {

void run_teacher(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  using namespace stages;
  Prepared p;
  read_documents(spec, p);  // sets p.types: the dataset's (dataset_types)
  models::Tagger tagger;
  p.scheme = data::make_scheme(spec.param_string("tagging"), p.types);
  torch::manual_seed(static_cast<uint64_t>(spec.param_int64("seed")));
  std::string init =
      spec.pretrain_dir.empty() ? spec.params.value("init_from", std::string()) : spec.pretrain_dir;
  const std::string arch = spec.params.value("arch", std::string("bert"));
  if (arch != "bert") {
    if (!init.empty())
      throw Error(spec.path + ": params.arch: a " + arch + " teacher reads no BERT checkpoint (" +
                  init + ")");
    data::TokenizerOptions to;
    to.lowercase = spec.param_bool("lowercase");
    p.tokenizer = std::make_unique<data::Tokenizer>(
        data::build_vocab(p.train_docs, static_cast<size_t>(spec.param_int("vocab_size")), to), to);
    encode_all(spec, p);
    prepare_word_vectors(spec, p);
    tagger = make_student(spec, p, "");
  } else if (!init.empty()) {
    auto ck = models::read_hf_checkpoint(init);
    p.tokenizer = load_tokenizer(init);
    auto bert =
        std::make_shared<models::BertTaggerImpl>(ck.config, p.scheme.columns(), p.scheme.classes());
    models::load_hf_weights(*bert, ck, init);
    tagger = bert;
  } else {
    data::TokenizerOptions to;
    to.lowercase = spec.param_bool("lowercase");
    p.tokenizer = std::make_unique<data::Tokenizer>(
        data::build_vocab(p.train_docs, static_cast<size_t>(spec.param_int("vocab_size")), to), to);
    models::BertConfig c;
    c.vocab_size = static_cast<int>(p.tokenizer->vocab().size());
    c.hidden = spec.param_int("hidden");
    c.layers = spec.param_int("layers");
    c.heads = spec.param_int("heads");
    c.intermediate = spec.param_int("ffn");
    c.dropout = c.attention_dropout = spec.param_double("dropout");
    c.max_position = std::max(512, spec.param_int("window"));
    c.initializer_range = spec.params.value("init_range", 0.02);
    if (c.hidden % c.heads != 0)
      throw Error(spec.path + ": params.hidden must be a multiple of params.heads");
    tagger = std::make_shared<models::BertTaggerImpl>(c, p.scheme.columns(), p.scheme.classes());
  }
  if (reducer.rank == 0) save_tokenizer(*p.tokenizer, spec.run_dir);
  if (arch == "bert") encode_all(spec, p);
  TrainData td{&p.train,    &p.dev, &p.dev_docs, nullptr, p.tokenizer->vocab().pad(),
               spec.format, p.types};
  td.decoder = decoder_of(spec);
  Objective objective = objective_of(spec);  // supervised terms only (no loss.kd_* here)
  TaggingTask task(tagger, td, objective, so.exec);
  TrainerOptions opt = trainer_options(spec, so);
  opt.order = training_order(spec, p);
  if (opt.freeze_epochs > 0) opt.frozen = {tagger->word_embeddings()};
  Trainer trainer(tagger, task, opt, reducer);
  auto state = trainer.run();
  if (reducer.rank != 0) return;
  load_best(*tagger, spec);
  write_model_files(*tagger, spec.run_dir, p.types, p.words);
  finish(spec, *tagger, p, so, {{"vocab_size", p.tokenizer->vocab().size()}, {"arch", arch}},
         trainer, state, reducer.world);
}

}  // namespace kdx::training
