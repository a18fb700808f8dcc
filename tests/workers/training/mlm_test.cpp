// Masked-language-model pretraining: BERT's masking recipe, the loop learning a corpus, and
// a checkpoint that a teacher (and a second pretraining run) loads.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "tests/support/test_support.h"
#include "workers/data/vocab_builder.h"
#include "workers/models/hf_checkpoint.h"
#include "workers/training/checkpoint.h"
#include "workers/training/mlm_task.h"
#include "workers/training/prepare.h"
#include "workers/training/trainer.h"

namespace kdx::training {
namespace {

// Sentences from a tiny grammar: the object word is predictable from the subject before it
// (and the subject from its object), the verb is random.
std::vector<data::Document> corpus(int n, int sentences, uint64_t seed) {
  const char* subj[] = {"кошка", "собака", "птица", "рыба"};
  const char* obj[] = {"молоко", "кость", "зерно", "червя"};
  const char* verb[] = {"любит", "ищет", "видит"};
  std::mt19937_64 rng(seed);
  std::vector<data::Document> out;
  for (int i = 0; i < n; ++i) {
    std::string text;
    for (int s = 0; s < sentences; ++s) {
      int k = static_cast<int>(rng() % 4);
      text += std::string(subj[k]) + " " + obj[k] + " " + verb[rng() % 3] + " . ";
    }
    out.push_back({std::to_string(i), data::decode_utf8(text, "corpus"), {}});
  }
  return out;
}

struct Fixture {
  std::vector<data::Document> docs = corpus(100, 12, 1);
  data::Tokenizer tok{data::build_vocab(docs, 200, {}), {}};
  MlmData data = make_mlm_data(docs, tok, 64, 10);
};

TEST(MlmMasking, FollowsBertsRecipe) {
  Fixture f;
  MlmOptions o;
  long real = 0, targets = 0, masked = 0, kept = 0, random = 0;
  for (size_t i = 0; i < f.data.train.size(); ++i) {
    auto& ex = f.data.train[i];
    auto m = mask_example(f.data, ex, o, 0, i);
    for (int id : ex.ids) real += !f.data.special[static_cast<size_t>(id)];
    targets += static_cast<long>(m.positions.size());
    for (size_t k = 0; k < m.positions.size(); ++k) {
      auto p = static_cast<size_t>(m.positions[k]);
      EXPECT_FALSE(f.data.special[static_cast<size_t>(ex.ids[p])]) << "a special token was masked";
      EXPECT_EQ(m.targets[k], ex.ids[p]);
      int in = m.input[p];
      if (in == f.data.mask)
        ++masked;
      else if (in == ex.ids[p])
        ++kept;
      else
        ++random;
    }
    // Deterministic per (seed, epoch, example); another epoch draws again.
    EXPECT_EQ(mask_example(f.data, ex, o, 0, i).positions, m.positions);
  }
  EXPECT_NEAR(static_cast<double>(targets) / real, 0.15, 0.01);
  EXPECT_NEAR(static_cast<double>(masked) / targets, 0.8, 0.03);
  EXPECT_NEAR(static_cast<double>(random) / targets, 0.1, 0.03);
  EXPECT_NEAR(static_cast<double>(kept) / targets, 0.1, 0.03);
  int differ = 0;
  for (size_t i = 0; i < f.data.train.size(); ++i)
    differ += mask_example(f.data, f.data.train[i], o, 1, i).positions !=
              mask_example(f.data, f.data.train[i], o, 0, i).positions;
  EXPECT_GT(differ, static_cast<int>(f.data.train.size()) / 2) << "masks must change per epoch";
}

TEST(MlmMasking, WholeWordMaskingTakesEveryPieceOfAWord) {
  std::vector<data::Document> docs;
  for (int i = 0; i < 20; ++i)
    docs.push_back({std::to_string(i),
                    data::decode_utf8("переподготовка сотрудников предприятия продолжается "
                                      "непрерывно и планомерно",
                                      "t"),
                    {}});
  // Characters only: every word is split into pieces.
  data::Tokenizer tok{data::build_vocab(docs, 1, {}), {}};
  auto d = make_mlm_data(docs, tok, 256, 0);  // one window per text: words stay whole
  MlmOptions o;
  o.whole_word = true;
  o.mask_prob = 0.3;
  int multi = 0;
  for (size_t i = 0; i < d.train.size(); ++i) {
    auto& ex = d.train[i];
    auto m = mask_example(d, ex, o, 0, i);
    std::set<int> chosen(m.positions.begin(), m.positions.end());
    for (int p : m.positions) {
      // The word's first piece and all its "##" pieces are chosen together.
      int start = p;
      while (!ex.word_start[static_cast<size_t>(start)]) --start;
      int end = start + 1;
      while (end < static_cast<int>(ex.ids.size()) && !ex.word_start[static_cast<size_t>(end)])
        ++end;
      for (int q = start; q < end; ++q) EXPECT_TRUE(chosen.count(q)) << "piece " << q;
      multi += end - start > 1;
    }
  }
  EXPECT_GT(multi, 0) << "the test needs words of several pieces";
}

TEST(MlmTask, LearnsAPredictableCorpusAndCheckpointLoadsAsTeacher) {
  torch::set_num_threads(1);
  // Many short texts: the attention that links subject and object forms after ~1,000 steps.
  Fixture f;
  f.docs = corpus(400, 3, 2);
  f.data = make_mlm_data(f.docs, f.tok, 64, 10);
  models::BertConfig c;
  c.vocab_size = static_cast<int>(f.tok.vocab().size());
  c.hidden = 64;
  c.layers = 2;
  c.heads = 2;
  c.intermediate = 128;
  c.dropout = c.attention_dropout = 0.0;
  c.initializer_range = 0.05;  // BERT's 0.02 learns attention too slowly for a test
  torch::manual_seed(3);
  auto model = models::BertMlm(c);
  MlmOptions mo;
  MlmTask task(model, f.data, mo);
  double before = task.evaluate().score;
  TrainerOptions o;
  o.epochs = 15;
  o.batch_size = 16;
  o.lr = 2e-3;
  o.warmup_steps = 10;
  o.checkpoint_every = 0;
  o.quiet = true;
  auto dist = distributed::make_single_process();
  auto s = Trainer(model.ptr(), task, o, *dist).run();
  double after = task.evaluate().score;
  std::printf("[ mlm      ] held-out masked accuracy %.3f -> %.3f\n", before, after);
  // Always guessing "." (a quarter of the tokens) would score 0.25.
  EXPECT_LT(before, 0.2);
  EXPECT_GT(after, 0.65);
  EXPECT_NEAR(s.best_score, after, 0.2);

  // The checkpoint is a Hugging Face BertForMaskedLM directory: a teacher loads its encoder.
  test::TempDir dir;
  models::save_mlm_checkpoint(*model, dir.path());
  save_tokenizer(f.tok, dir.path());
  auto ck = models::read_hf_checkpoint(dir.path());
  EXPECT_TRUE(ck.tensors.count("cls.predictions.transform.dense.weight"));
  EXPECT_TRUE(ck.tensors.count("cls.predictions.bias"));
  auto teacher = std::make_shared<models::BertTaggerImpl>(ck.config, 3, 3);
  EXPECT_FALSE(models::load_hf_weights(*teacher, ck, dir.path()));  // no NER head yet
  EXPECT_TRUE(torch::equal(teacher->bert->embeddings->word_embeddings->weight,
                           model->bert->embeddings->word_embeddings->weight));
  // A second pretraining run (domain-adaptive) continues from it, MLM head included.
  auto again = models::BertMlm(ck.config);
  EXPECT_TRUE(models::load_hf_weights(*again, ck, dir.path(), "cls."));
  EXPECT_TRUE(torch::equal(again->bias, model->bias));
}

}  // namespace
}  // namespace kdx::training
