// Pretrained word vectors as a model input, end to end through kdx: a recurrent teacher
// ensemble over frozen vectors (a text-format file made from the data's own words), the
// logits stage combining its members, and students (CE, KD, self-training, one with the
// vectors too), on a small slice of the real RuNNE.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/input_file.h"
#include "common/json_io.h"
#include "tests/support/test_support.h"
#include "workers/data/readers.h"
#include "workers/data/tokenizer.h"
#include "workers/models/safetensors.h"
#include "workers/training/export.h"
#include "workers/training/logits_cache.h"
#include "workers/training/prepare.h"
#include "workers/training/run_spec.h"

namespace kdx {
namespace {

// A vector per distinct lower-cased word of the first documents, values from its rank.
std::string make_vectors(const std::string& runne_train, int dim, std::vector<std::string>& words) {
  auto docs = data::read_runne({runne_train}, {});
  std::set<std::string> seen;
  for (size_t d = 0; d < 20 && d < docs.size(); ++d)
    for (auto& w : data::basic_tokenize(docs[d].text, {}))
      if (words.size() < 400) {
        std::u32string low;
        for (char32_t c : w.text) low += (c >= U'А' && c <= U'Я') ? c + 32 : c;
        std::string s = data::encode_utf8(low);
        if (seen.insert(s).second) words.push_back(s);
      }
  std::ostringstream out;
  out << words.size() << " " << dim << "\n";
  for (size_t i = 0; i < words.size(); ++i) {
    out << words[i];
    for (int k = 0; k < dim; ++k) out << " " << std::sin(0.1 * static_cast<double>(i * dim + k));
    out << "\n";
  }
  return out.str();
}

nlohmann::json result_of(const std::string& run_dir) {
  return read_json_file(run_dir + "/result.json")["metrics"];
}

TEST(WordVectorsPipeline, RecurrentEnsembleTeacherOverFrozenVectorsToStudents) {
  std::string data = test::shared_data_dir();
  ASSERT_FALSE(data.empty());
  test::TempDir dir;
  std::vector<std::string> words;
  dir.write("vec.txt", make_vectors(data + "/runne/train.jsonl", 8, words));
  dir.write("exp.yaml", R"(experiment: vec
datasets:
  - name: runne
    format: runne
    train: runne/train.jsonl
    test: [runne/test.jsonl, runne/test_with_answers.jsonl]
    unlabeled: runne/dev.jsonl
teacher:
  arch: lstm
  emb: 16
  hidden: 16
  vectors: {file: )" + dir.file("vec.txt") +
                            R"(}
  vocab_size: 2000
  ensemble_seeds: [1, 2]
  epochs: 1
  max_train_docs: 20
  max_test_docs: 4
logits:
  combine: mean_probs
students:
  fixed: {emb: 8, hidden: 8, epochs: 1, max_test_docs: 4}
  grid:
    arch: [sru]
    loss: [{kd_weight: 0}, {kd_weight: 1}, {kd_weight: 1, kd_loss: hard}]
  include:
    - {arch: lstm, vectors: {file: )" +
                            dir.file("vec.txt") + R"(, join: sum}, loss: {kd_weight: 1}}
    - {arch: sru, loss: {kd_weight: 1, combine: mean_logits}}
)");
  // The vectors file is given by absolute path, outside the data root.
  std::vector<std::string> env = {"KDX_DATA_DIR=" + data, "OMP_NUM_THREADS=1"};
  auto r = test::run_command(
      {KDX_BIN, "submit", "exp.yaml", "--executor", "local", "--jobs", "2", "--wait"}, dir.path(),
      env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("9 runs: 9 COMPLETED"), std::string::npos) << r.out;

  auto plan =
      test::run_command({KDX_BIN, "submit", "exp.yaml", "--dry-run", "--json"}, dir.path(), env);
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  auto runs = nlohmann::json::parse(plan.out)["runs"];
  std::vector<nlohmann::json> teachers, students;
  // One logits run per combination rule in use: logits.combine for the students naming none,
  // and the one a student names (loss.combine).
  std::map<std::string, nlohmann::json> logits_by_rule;
  for (auto& run : runs) {
    if (run["stage"] == "teacher") teachers.push_back(run);
    if (run["stage"] == "logits") logits_by_rule[run["params"]["combine"]] = run;
    if (run["stage"] == "student") students.push_back(run);
  }
  ASSERT_EQ(teachers.size(), 2u);
  ASSERT_EQ(students.size(), 5u);
  ASSERT_EQ(logits_by_rule.size(), 2u);
  nlohmann::json logits = logits_by_rule.at("mean_probs");
  EXPECT_EQ(logits["teacher_dirs"].size(), 2u);
  for (auto& s : students) {
    const auto& loss = s["params"]["loss"];
    if (loss["kd_weight"] == 0) {
      EXPECT_FALSE(loss.contains("combine")) << "a CE-only twin reads no logits";
      continue;
    }
    EXPECT_EQ(s["logits_dir"], logits_by_rule.at(loss["combine"])["run_dir"]) << s["run_dir"];
  }
  auto other = result_of(logits_by_rule.at("mean_logits")["run_dir"]);
  EXPECT_EQ(other["combine"], "mean_logits");
  // Each rule's ensemble scored as one teacher on the members' test documents, and shown so.
  for (auto& [rule, run] : logits_by_rule) {
    auto m = result_of(run["run_dir"]);
    EXPECT_EQ(m["test_docs"], 4) << rule;
    EXPECT_GE(m["f1"].get<double>(), 0.0) << rule;
    EXPECT_EQ(m["params"].get<int64_t>(),
              2 * result_of(teachers[0]["run_dir"])["params"].get<int64_t>());
  }
  auto report = test::run_command({KDX_BIN, "report", "-e", "vec"}, dir.path(), env);
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_NE(report.out.find("| teacher ensemble (lstm) | 16 | 2 | mean_logits of 2 | 0.10M |"),
            std::string::npos)
      << report.out;
  EXPECT_NE(report.out.find("| teacher ensemble (lstm) | 16 | 2 | mean_probs of 2 | 0.10M |"),
            std::string::npos)
      << report.out;
  EXPECT_NE(report.out.find("| 1/1 kl mean_probs |"), std::string::npos) << report.out;

  // The teacher: the vectors' rows its texts use, frozen: in the total, not trainable, and
  // after training still the file's values.
  std::string t0 = teachers[0]["run_dir"];
  auto tm = result_of(t0);
  auto list = read_input(t0 + "/vectors.txt", InputKind::Data);
  std::vector<std::string> kept;
  std::istringstream in(list);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "kdx-word-list 1");
  while (std::getline(in, line)) kept.push_back(line);
  ASSERT_GT(kept.size(), 50u);
  EXPECT_EQ(tm["params_vectors"].get<int64_t>(), static_cast<int64_t>((kept.size() + 1) * 8));
  EXPECT_EQ(tm["params"].get<int64_t>() - tm["params_trainable"].get<int64_t>(),
            tm["params_vectors"].get<int64_t>());
  EXPECT_GT(tm["word_vector_coverage"].get<double>(), 0.3);
  auto weights = models::read_safetensors(t0 + "/model.safetensors");
  auto table = models::to_float32(weights.at("vectors.table"), "vectors.table");
  for (size_t row = 1; row <= kept.size(); row += 17) {
    size_t i =
        static_cast<size_t>(std::find(words.begin(), words.end(), kept[row - 1]) - words.begin());
    ASSERT_LT(i, words.size()) << kept[row - 1];
    for (int k = 0; k < 8; ++k)
      EXPECT_NEAR(table[row * 8 + static_cast<size_t>(k)],
                  std::sin(0.1 * static_cast<double>(i * 8 + static_cast<size_t>(k))), 1e-5);
  }
  for (int k = 0; k < 8; ++k) EXPECT_EQ(table[static_cast<size_t>(k)], 0.0f);  // row 0: unknown

  // The ensemble's cache: mean probabilities stored as log-probabilities, under the key the
  // students compute from their own run.json.
  const std::string ldir = logits["run_dir"];
  auto lm = result_of(ldir);
  EXPECT_EQ(lm["ensemble"], 2);
  EXPECT_EQ(lm["combine"], "mean_probs");
  std::string kd_student;
  for (auto& s : students)
    if (s["params"]["loss"]["kd_weight"] == 1 && !s["params"].contains("vectors") &&
        s["params"]["loss"]["combine"] == "mean_probs")
      kd_student = s["run_dir"];
  ASSERT_FALSE(kd_student.empty());
  auto spec = training::read_run_spec(kd_student + "/run.json");
  ASSERT_EQ(spec.teacher_dirs.size(), 2u);
  training::LogitsCache cache(ldir + "/logits.bin", training::logits_key(spec, spec.teacher_dir));
  EXPECT_EQ(static_cast<long>(cache.size()), lm["examples"].get<long>());
  // The windows as the logits stage encoded them (the cache refuses other ids): per token
  // and tag column, the stored rows are log-probabilities.
  training::Prepared p;
  auto lspec = training::read_run_spec(ldir + "/run.json");
  lspec.params["window"] = 128;
  lspec.params["max_train_docs"] = 20;
  p.types = read_json_file(t0 + "/types.json").get<std::vector<std::string>>();
  training::read_documents(lspec, p);
  p.tokenizer = training::load_tokenizer(t0);
  auto scheme = data::make_scheme("per_type_bilou", p.types);
  auto train = data::encode_dataset(p.train_docs, *p.tokenizer, scheme, 128);
  data::append_unlabelled(train, p.unlabeled_docs, *p.tokenizer, 128);
  ASSERT_EQ(train.examples.size(), cache.size());
  for (size_t e : {size_t{0}, cache.size() - 1}) {
    auto rows = cache.get(e, train.examples[e].ids).view({-1, scheme.columns(), scheme.classes()});
    auto sums = rows.exp().sum(-1);
    EXPECT_NEAR(sums.min().item<double>(), 1.0, 2e-3);
    EXPECT_NEAR(sums.max().item<double>(), 1.0, 2e-3);
  }

  // Students: the self-training twin and KD both ran on the unlabeled text; the one with the
  // vectors counts them apart.
  for (auto& s : students) {
    auto m = result_of(s["run_dir"]);
    EXPECT_TRUE(m.contains("f1")) << s["run_dir"];
    bool vec = s["params"].contains("vectors");
    EXPECT_EQ(m.contains("params_vectors"), vec) << s["run_dir"];
    if (vec) {
      EXPECT_EQ(s["params"]["vectors"]["join"], "sum");
      EXPECT_EQ(s["params"]["vectors"]["format"], "text");
      // Exported, the model reads new text through its own word list.
      std::string out = dir.file("export");
      auto ex = test::run_command({KDX_WORKER_BIN, "export", "--run", s["run_dir"], "--out", out},
                                  dir.path(), env);
      ASSERT_EQ(ex.exit_code, 0) << ex.err;
      auto model = training::load_exported(out);
      EXPECT_GT(model.words.words.size(), 50u);
      training::tag_text(model, U"Президент России Владимир Путин прибыл в Москву.");
    }
  }
}

TEST(WordVectorsPipeline, PlannerNamesAMissingVectorsFileAndBertOnlyKeys) {
  std::string data = test::shared_data_dir();
  ASSERT_FALSE(data.empty());
  test::TempDir dir;
  std::string base = R"(experiment: v
datasets:
  - {name: runne, format: runne, train: runne/train.jsonl, test: [runne/test.jsonl, runne/test_with_answers.jsonl]}
students:
  grid: {arch: [lstm]}
)";
  std::vector<std::string> env = {"KDX_DATA_DIR=" + data, "KDX_CACHE=" + dir.file("cache")};
  dir.write("a.yaml", base + "teacher: {arch: lstm, vectors: {file: navec}}\n");
  auto a = test::run_command({KDX_BIN, "submit", "a.yaml", "--dry-run"}, dir.path(), env);
  EXPECT_NE(a.exit_code, 0);
  EXPECT_NE(a.err.find("a.yaml: teacher: vectors.file: cannot read " + dir.file("cache") +
                       "/navec/navec_news_v1_1B_250K_300d_100q.tar"),
            std::string::npos)
      << a.err;
  EXPECT_NE(a.err.find("kdx data fetch navec"), std::string::npos) << a.err;
  dir.write("b.yaml", base + "teacher: {arch: sru, heads: 4}\n");
  auto b = test::run_command({KDX_BIN, "submit", "b.yaml", "--dry-run"}, dir.path(), env);
  EXPECT_NE(b.exit_code, 0);
  EXPECT_NE(b.err.find("b.yaml: teacher.heads: a BERT setting, but teacher.arch is sru"),
            std::string::npos)
      << b.err;
  dir.write("c.yaml", base + "teacher: {arch: lstm}\nlogits: {combine: mean_probs}\n");
  auto c = test::run_command({KDX_BIN, "submit", "c.yaml", "--dry-run"}, dir.path(), env);
  EXPECT_NE(c.exit_code, 0);
  EXPECT_NE(c.err.find("c.yaml: logits.combine: only a teacher ensemble"), std::string::npos)
      << c.err;
  dir.write("d.yaml", base + "teacher: {arch: lstm, ensemble_seeds: [3]}\n");
  auto d = test::run_command({KDX_BIN, "submit", "d.yaml", "--dry-run"}, dir.path(), env);
  EXPECT_NE(d.exit_code, 0);
  EXPECT_NE(d.err.find("d.yaml: teacher.ensemble_seeds: an ensemble needs at least 2 seeds"),
            std::string::npos)
      << d.err;
  dir.write("e.yaml", R"(experiment: v
datasets:
  - {name: runne, format: runne, train: runne/train.jsonl, test: [runne/test.jsonl, runne/test_with_answers.jsonl]}
teacher: {arch: lstm}
students:
  grid: {arch: [lstm], loss: [{kd_weight: 1, combine: mean_probs}]}
)");
  auto e = test::run_command({KDX_BIN, "submit", "e.yaml", "--dry-run"}, dir.path(), env);
  EXPECT_NE(e.exit_code, 0);
  EXPECT_NE(e.err.find("e.yaml: students: loss.combine: only a teacher ensemble "
                       "(teacher.ensemble_seeds) has logits to combine"),
            std::string::npos)
      << e.err;
}

}  // namespace
}  // namespace kdx
