#include <gtest/gtest.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tests/support/test_support.h"
#include "workers/models/bert.h"
#include "workers/models/hf_checkpoint.h"
#include "workers/models/safetensors.h"
#include "workers/models/student.h"
#include "workers/training/checkpoint.h"

namespace kdx::models {
namespace {

class StudentShapes : public ::testing::TestWithParam<std::string> {};

TEST_P(StudentShapes, ForwardBackwardAndFastInferenceAgree) {
  StudentConfig c;
  c.arch = GetParam();
  c.vocab_size = 50;
  c.emb = 16;
  c.hidden = 12;
  c.layers = 2;
  c.columns = 4;
  c.classes = 3;
  c.dropout = 0.0;
  torch::manual_seed(3);
  StudentTaggerImpl m(c);
  auto ids = torch::randint(1, 50, {3, 7}, torch::kInt64);
  auto mask = torch::ones({3, 7}, torch::kInt64);
  mask[2].narrow(0, 3, 4).zero_();
  auto y = m.forward(ids, mask);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 7, 12}));
  y.sum().backward();
  for (auto& p : m.named_parameters()) EXPECT_TRUE(p.value().grad().defined()) << p.key();
  // The deployed path (hand-written LSTM loop / SRU kernel) computes what training computes.
  m.eval();
  auto a = m.forward(ids, mask).detach();
  auto valid = mask.unsqueeze(-1).to(torch::kFloat32);
  // Each LSTM kernel on its own (the loop must not hide behind a measured choice of ATen),
  // then the measured choice, which is remembered per batch size.
  for (std::string kernel : {"loop", "aten", "auto"}) {
    m.lstm_kernel = kernel;
    auto b = m.infer(ids, mask);
    EXPECT_LT(((a - b) * valid).abs().max().item<float>(), 1e-4) << kernel;
  }
  // Without padding ATen runs both directions in one fused call: the same outputs.
  auto full = torch::ones({3, 7}, torch::kInt64);
  auto a_full = m.forward(ids, full).detach();
  for (std::string kernel : {"loop", "aten"}) {
    m.lstm_kernel = kernel;
    EXPECT_LT((a_full - m.infer(ids, full)).abs().max().item<float>(), 1e-4) << kernel;
  }
  // Batch 1 (the loop's matrix-vector path), each row on its own, padded or not.
  for (int64_t row = 0; row < 3; ++row) {
    auto one_ids = ids.narrow(0, row, 1), one_mask = mask.narrow(0, row, 1);
    auto want = m.forward(one_ids, one_mask).detach();
    auto v = one_mask.unsqueeze(-1).to(torch::kFloat32);
    for (std::string kernel : {"loop", "aten"}) {
      m.lstm_kernel = kernel;
      EXPECT_LT(((want - m.infer(one_ids, one_mask)) * v).abs().max().item<float>(), 1e-4)
          << kernel << " row " << row;
    }
  }
  if (c.arch == "lstm") {
    auto chosen = m.chosen_lstm_kernel(3);
    EXPECT_TRUE(chosen == "loop" || chosen == "aten") << chosen;
    EXPECT_EQ(m.chosen_lstm_kernel(1), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, StudentShapes, ::testing::Values("lstm", "sru", "srupp"));

TEST(Student, UnknownArchitectureIsAnError) {
  try {
    make_tagger({{"arch", "gru"}, {"vocab_size", 10}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "unknown student architecture 'gru' (expected lstm, sru, srupp)");
  }
}

BertConfig tiny_bert() {
  BertConfig c;
  c.vocab_size = 30;
  c.hidden = 16;
  c.layers = 2;
  c.heads = 2;
  c.intermediate = 32;
  c.max_position = 64;
  c.dropout = c.attention_dropout = 0.0;
  return c;
}

TEST(Bert, HuggingFaceParameterNames) {
  BertTaggerImpl t(tiny_bert(), 2, 3);
  auto p = t.named_parameters();
  for (auto name : {"bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight",
                    "bert.encoder.layer.1.attention.self.query.weight",
                    "bert.encoder.layer.0.attention.output.dense.bias",
                    "bert.encoder.layer.0.attention.output.LayerNorm.bias",
                    "bert.encoder.layer.1.intermediate.dense.weight",
                    "bert.encoder.layer.1.output.dense.weight",
                    "bert.encoder.layer.1.output.LayerNorm.weight", "classifier.weight"})
    EXPECT_TRUE(p.contains(name)) << name;
  auto y =
      t.forward(torch::randint(0, 30, {2, 5}, torch::kInt64), torch::ones({2, 5}, torch::kInt64));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 5, 6}));
}

TEST(Bert, PaddingDoesNotChangeValidPositions) {
  torch::manual_seed(1);
  BertTaggerImpl t(tiny_bert(), 1, 3);
  t.eval();
  auto ids = torch::randint(5, 30, {1, 6}, torch::kInt64);
  auto padded = torch::cat({ids, torch::zeros({1, 3}, torch::kInt64)}, 1);
  auto mask =
      torch::cat({torch::ones({1, 6}, torch::kInt64), torch::zeros({1, 3}, torch::kInt64)}, 1);
  auto a = t.forward(ids, torch::ones({1, 6}, torch::kInt64));
  auto b = t.forward(padded, mask).narrow(1, 0, 6);
  EXPECT_LT((a - b).abs().max().item<float>(), 1e-4);
}

// Writes a small checkpoint in Hugging Face's layout (config.json, vocab.txt,
// model.safetensors with BertModel names, fp16 weights) and loads it.
class HfCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(11);
    BertTaggerImpl src(tiny_bert(), 1, 3);
    std::map<std::string, RawTensor> tensors;
    for (auto& p : src.named_parameters()) {
      if (p.key().rfind("classifier", 0) == 0) continue;
      auto t = p.value().detach().to(torch::kHalf).contiguous();
      RawTensor r{
          "F16", t.sizes().vec(),
          std::string(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.nbytes()))};
      tensors[p.key().substr(5)] = r;  // "bert." dropped: a plain BertModel checkpoint
    }
    RawTensor pos{"I64", {1, 64}, std::string(64 * 8, '\0')};
    tensors["embeddings.position_ids"] = pos;
    write_safetensors(dir_.file("model.safetensors"), tensors);
    auto cfg = bert_config_to_hf(tiny_bert());
    write_file_atomic(dir_.file("config.json"), cfg.dump());
    std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    for (int i = 5; i < 30; ++i) vocab += "w" + std::to_string(i) + "\n";
    dir_.write("vocab.txt", vocab);
    reference_ = std::make_shared<BertTaggerImpl>(tiny_bert(), 1, 3);
    torch::NoGradGuard g;
    for (auto& p : reference_->named_parameters())
      if (p.key().rfind("classifier", 0) != 0)
        p.value().copy_(src.named_parameters()[p.key()].to(torch::kHalf).to(torch::kFloat32));
  }
  test::TempDir dir_;
  std::shared_ptr<BertTaggerImpl> reference_;
};

TEST_F(HfCheckpointTest, LoadsByNameWithSameEncoderOutputs) {
  auto ck = read_hf_checkpoint(dir_.path());
  EXPECT_EQ(ck.config.hidden, 16);
  BertTaggerImpl loaded(ck.config, 2, 3);
  EXPECT_FALSE(
      load_hf_weights(loaded, ck, dir_.path()));  // no classifier in a BertModel checkpoint
  loaded.eval();
  reference_->eval();
  auto ids = torch::randint(0, 30, {2, 9}, torch::kInt64);
  auto mask = torch::ones({2, 9}, torch::kInt64);
  auto a = loaded.bert->forward(ids, mask), b = reference_->bert->forward(ids, mask);
  EXPECT_LT((a - b).abs().max().item<float>(), 1e-5);
}

// The same numbers as an independent implementation of BERT's forward pass in Python
// PyTorch (Debian's python3-torch) reading the same checkpoint files.
TEST_F(HfCheckpointTest, MatchesIndependentPythonReference) {
  auto ck = read_hf_checkpoint(dir_.path());
  BertTaggerImpl loaded(ck.config, 1, 3);
  load_hf_weights(loaded, ck, dir_.path());
  loaded.eval();
  auto ids = torch::tensor({{2, 7, 9, 11, 3}, {2, 29, 5, 6, 3}}, torch::kInt64);
  auto ours = loaded.bert->forward(ids, torch::ones({2, 5}, torch::kInt64));
  auto r =
      test::run_command({"/usr/bin/python3", KDX_SOURCE_DIR "/tests/programs/hf_bert_reference.py",
                         dir_.path(), "[[2, 7, 9, 11, 3], [2, 29, 5, 6, 3]]"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ref = nlohmann::json::parse(r.out);
  float worst = 0;
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 5; ++t)
      for (int h = 0; h < 16; ++h)
        worst = std::max(worst, std::abs(ours[b][t][h].item<float>() - ref[b][t][h].get<float>()));
  EXPECT_LT(worst, 1e-4);
}

TEST_F(HfCheckpointTest, VocabularyMismatchIsAnError) {
  dir_.write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
  try {
    read_hf_checkpoint(dir_.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              dir_.file("vocab.txt") + " has 4 tokens but " + dir_.file("config.json") +
                  " says vocab_size 30: vocabulary and checkpoint do not match");
  }
}

TEST_F(HfCheckpointTest, CorruptWeightsAreAnError) {
  dir_.write("model.safetensors", std::string("\x10\0\0\0\0\0\0\0{\"a\":", 13));
  try {
    read_hf_checkpoint(dir_.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              dir_.file("model.safetensors") +
                  ": not a safetensors file (header length 16 exceeds the file)");
  }
}

TEST_F(HfCheckpointTest, PytorchBinAloneNamesTheConverter) {
  ::unlink(dir_.file("model.safetensors").c_str());
  dir_.write("pytorch_model.bin", "x");
  try {
    read_hf_checkpoint(dir_.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(
        std::string(e.what()),
        dir_.path() +
            ": only pytorch_model.bin found; convert it once with: tools/hf-bin-to-safetensors " +
            dir_.path());
  }
}

// A pytorch_model.bin written by Python's torch.save(state_dict), converted by the shipped
// tool, loads with the same encoder outputs.
TEST_F(HfCheckpointTest, ConvertedPytorchBinLoads) {
  auto before = read_hf_checkpoint(dir_.path());
  std::string script =
      "import sys, torch, json, struct\n"
      "d = open(sys.argv[1] + '/model.safetensors', 'rb').read()\n"
      "n = struct.unpack('<Q', d[:8])[0]; h = json.loads(d[8:8 + n]); out = {}\n"
      "for k, v in h.items():\n"
      "    if k == '__metadata__': continue\n"
      "    b, e = v['data_offsets']; dt = {'F16': torch.float16, 'I64': torch.int64}[v['dtype']]\n"
      "    out[k] = torch.frombuffer(bytearray(d[8 + n + b:8 + n + e]), "
      "dtype=dt).reshape(v['shape'])\n"
      "torch.save(out, sys.argv[1] + '/pytorch_model.bin')\n";
  dir_.write("make_bin.py", script);
  auto made = test::run_command({"/usr/bin/python3", dir_.file("make_bin.py"), dir_.path()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ::unlink(dir_.file("model.safetensors").c_str());
  auto conv = test::run_command({KDX_SOURCE_DIR "/tools/hf-bin-to-safetensors", dir_.path()});
  ASSERT_EQ(conv.exit_code, 0) << conv.err;
  auto after = read_hf_checkpoint(dir_.path());
  for (auto& [name, t] : before.tensors)
    EXPECT_TRUE(torch::equal(t, after.tensors.at(name))) << name;
}

TEST(Weights, SaveLoadRoundTripAndShapeMismatch) {
  test::TempDir dir;
  StudentConfig c;
  c.vocab_size = 20;
  c.emb = 8;
  c.hidden = 4;
  StudentTaggerImpl a(c), b(c);
  training::save_weights(a, dir.file("w.safetensors"));
  training::load_weights(b, dir.file("w.safetensors"));
  for (auto& p : a.named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), b.named_parameters()[p.key()])) << p.key();
  c.hidden = 5;
  StudentTaggerImpl wrong(c);
  EXPECT_THROW(training::load_weights(wrong, dir.file("w.safetensors")), Error);
}

}  // namespace
}  // namespace kdx::models
