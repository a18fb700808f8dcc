#include <gtest/gtest.h>

#include <cstdio>
#include <map>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tests/support/test_support.h"
#include "workers/models/bert.h"
#include "workers/models/hf_checkpoint.h"
#include "workers/models/safetensors.h"
#include "workers/models/student.h"
#include "workers/training/checkpoint.h"
#include "workers/training/student_init.h"

namespace kdx::models {
namespace {

class StudentShapes : public ::testing::TestWithParam<std::string> {};

TEST_P(StudentShapes, ForwardBackwardAndFastInferenceAgree) {
  StudentConfig c;
  c.residual = GetParam() == "lstm_residual";
  c.arch = c.residual ? "lstm" : GetParam();
  c.vocab_size = 50;
  c.emb = 16;
  c.hidden = 12;
  c.layers = c.residual ? 3 : 2;
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

INSTANTIATE_TEST_SUITE_P(Archs, StudentShapes,
                         ::testing::Values("lstm", "lstm_residual", "sru", "srupp"));

// A residual layer adds its input: with the second layer's weights zero (its output is then
// 0: c = 0.5 * 0 + 0.5 * tanh(0)), a residual two-layer LSTM computes what its first layer
// alone computes, on every path; without `residual` it does not.
TEST(Student, ResidualLstmAddsTheLayerInput) {
  StudentConfig c;
  c.arch = "lstm";
  c.vocab_size = 40;
  c.emb = 8;
  c.hidden = 16;  // a multiple of 16: the fused kernel too
  c.columns = 2;
  c.classes = 3;
  c.dropout = 0.0;
  c.layers = 1;
  torch::manual_seed(5);
  StudentTaggerImpl one(c);
  c.layers = 2;
  c.residual = true;
  StudentTaggerImpl two(c);
  c.residual = false;
  StudentTaggerImpl plain(c);
  {
    torch::NoGradGuard g;
    auto src = one.named_parameters();
    for (auto* m : {&two, &plain}) {
      for (auto& p : m->named_parameters()) {
        if (src.contains(p.key()))
          p.value().copy_(src[p.key()]);
        else
          p.value().zero_();  // layer 1's LSTMs
      }
    }
  }
  one.eval();
  two.eval();
  plain.eval();
  auto ids = torch::randint(1, 40, {2, 9}, torch::kInt64);
  auto mask = torch::ones({2, 9}, torch::kInt64);
  mask[1].narrow(0, 6, 3).zero_();
  auto valid = mask.unsqueeze(-1).to(torch::kFloat32);
  auto want = one.forward(ids, mask).detach();
  EXPECT_LT(((two.forward(ids, mask) - want) * valid).abs().max().item<float>(), 1e-6);
  EXPECT_GT(((plain.forward(ids, mask) - want) * valid).abs().max().item<float>(), 1e-3);
  std::vector<std::string> kernels = {"loop", "aten"};
  if (kernels::available()) kernels.push_back("fused");
  for (auto& kernel : kernels) {
    two.lstm_kernel = kernel;
    EXPECT_LT(((two.infer(ids, mask) - want) * valid).abs().max().item<float>(), 1e-5) << kernel;
    auto full = torch::ones({2, 9}, torch::kInt64);  // ATen's fused bidirectional call
    EXPECT_LT((two.infer(ids, full) - one.forward(ids, full)).abs().max().item<float>(), 1e-5)
        << kernel;
  }
  // model.json keeps it (a reloaded model must add the input too), and only when set.
  EXPECT_EQ(two.describe().value("residual", false), true);
  EXPECT_FALSE(plain.describe().contains("residual"));
  EXPECT_TRUE(student_config_from_json(two.describe()).residual);
}

TEST(Student, ForgetBiasSetsTheGateSumOfEveryLayer) {
  StudentConfig c;
  c.arch = "lstm";
  c.vocab_size = 10;
  c.hidden = 8;
  c.layers = 2;
  StudentTaggerImpl m(c);
  init_forget_bias(m, 1.5);
  for (auto* list : {&m.lstm_fwd, &m.lstm_bwd})
    for (auto& layer : **list) {
      auto p = layer->named_parameters();
      auto sum = p["bias_ih_l0"] + p["bias_hh_l0"];
      EXPECT_TRUE(torch::allclose(sum.narrow(0, 8, 8), torch::full({8}, 1.5)));
      // The other gates keep their initial values.
      EXPECT_GT(sum.narrow(0, 0, 8).abs().max().item<float>(), 0);
      EXPECT_LT(sum.narrow(0, 0, 8).abs().max().item<float>(), 1.0);
    }
  c.arch = "sru";
  StudentTaggerImpl sru(c);
  EXPECT_THROW(init_forget_bias(sru, 1.0), Error);
}

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

TEST(ConvFrontend, ShapesNamesAndBadOptions) {
  torch::manual_seed(5);
  ConvOptions o;
  o.kernels = {1, 3, 5};
  o.channels = {12, 6};
  ConvFrontendImpl f(16, o);
  EXPECT_EQ(f.output_size(), 6);
  auto x = torch::randn({2, 7, 16});
  auto mask = torch::ones({2, 7}, torch::kInt64);
  mask[1].narrow(0, 4, 3).zero_();
  auto y = f.forward(x, mask);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 7, 6}));
  // Padded positions come out as zeros (ReLU -> BatchNorm would make them non-zero).
  EXPECT_EQ(y[1].narrow(0, 4, 3).abs().max().item<float>(), 0.f);
  auto p = f.named_parameters();
  for (auto name : {"layers.0.convs.0.weight", "layers.0.convs.2.weight", "layers.0.norm.weight",
                    "layers.1.convs.1.bias", "layers.1.norm.bias"})
    EXPECT_TRUE(p.contains(name)) << name;
  // 'same' padding: each kernel keeps the length; 12 channels are 3 x 4.
  EXPECT_EQ(p["layers.0.convs.2.weight"].sizes(), (std::vector<int64_t>{4, 16, 5}));
  EXPECT_TRUE(f.named_buffers().contains("layers.1.norm.running_var"));
  auto message = [](ConvOptions bad) {
    try {
      ConvFrontendImpl(8, bad);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  ConvOptions even = o;
  even.kernels = {1, 2};
  EXPECT_EQ(message(even),
            "conv front-end: kernels: 2 is not an odd width >= 1 ('same' padding needs odd "
            "widths)");
  ConvOptions split = o;
  split.channels = {12, 7};
  EXPECT_EQ(message(split),
            "conv front-end: channels: 7 is not a positive multiple of the 3 kernel widths (each "
            "layer's channels are split equally)");
}

// ConvLSTM / ConvSRU / ConvSRU++ at a small size: training-mode passes move BatchNorm's
// running statistics away from (0, 1), then in eval mode forward(), infer() and each row run
// alone without padding agree at every real token, whatever tokens the padding holds.
class ConvStudents : public ::testing::TestWithParam<std::string> {};

TEST_P(ConvStudents, EvalForwardInferAndUnpaddedRowsAgree) {
  StudentConfig c;
  c.arch = GetParam();
  c.vocab_size = 40;
  c.emb = 10;
  c.hidden = 6;
  c.layers = 2;
  c.proj = 4;
  c.columns = 2;
  c.classes = 3;
  c.dropout = 0.1;
  c.attention_dropout = 0.1;
  c.conv.kernels = {1, 3, 5};
  c.conv.channels = {12, 9};
  c.conv.dropout = 0.1;
  torch::manual_seed(7);
  StudentTaggerImpl m(c);
  auto ids = torch::randint(1, 40, {3, 8}, torch::kInt64);  // padding positions hold real ids
  auto mask = torch::ones({3, 8}, torch::kInt64);
  const std::vector<int64_t> lengths = {8, 5, 2};
  for (int64_t r = 0; r < 3; ++r) mask[r].narrow(0, lengths[r], 8 - lengths[r]).zero_();
  m.train();
  auto y = m.forward(ids, mask);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 8, 6}));
  y.sum().backward();
  for (auto& p : m.named_parameters()) EXPECT_TRUE(p.value().grad().defined()) << p.key();
  {
    torch::NoGradGuard g;
    for (int i = 0; i < 5; ++i)
      m.forward(torch::randint(1, 40, {4, 8}, torch::kInt64), mask.repeat({2, 1}).narrow(0, 0, 4));
  }
  auto stats = m.named_buffers()["conv.layers.0.norm.running_mean"].clone();
  EXPECT_GT(stats.abs().max().item<float>(), 1e-3);  // moved: eval mode reads real statistics
  // infer() is the eval-mode computation even while the module is in training mode, and it
  // leaves the running statistics alone.
  auto in_train_mode = m.infer(ids, mask);
  EXPECT_TRUE(torch::equal(stats, m.named_buffers()["conv.layers.0.norm.running_mean"]));
  m.eval();
  auto a = m.forward(ids, mask).detach();
  auto valid = mask.unsqueeze(-1).to(torch::kFloat32);
  EXPECT_LT(((a - in_train_mode) * valid).abs().max().item<float>(), 1e-4);
  std::vector<std::string> kernels = {""};
  if (c.arch == "lstm") kernels = {"loop", "aten"};
  for (auto& kernel : kernels) {
    m.lstm_kernel = kernel;
    EXPECT_LT(((a - m.infer(ids, mask)) * valid).abs().max().item<float>(), 1e-4) << kernel;
    // No padding: ATen's fused bidirectional path for the LSTM.
    auto full = torch::ones({3, 8}, torch::kInt64);
    EXPECT_LT((m.forward(ids, full).detach() - m.infer(ids, full)).abs().max().item<float>(), 1e-4)
        << kernel;
  }
  for (int64_t r = 0; r < 3; ++r) {
    auto alone_ids = ids[r].narrow(0, 0, lengths[r]).unsqueeze(0);
    auto alone = m.forward(alone_ids, torch::ones_like(alone_ids)).detach();
    EXPECT_LT((alone[0] - a[r].narrow(0, 0, lengths[r])).abs().max().item<float>(), 1e-5)
        << "row " << r;
    for (auto& kernel : kernels) {
      m.lstm_kernel = kernel;
      auto inf = m.infer(alone_ids, torch::ones_like(alone_ids));
      EXPECT_LT((alone - inf).abs().max().item<float>(), 1e-4) << kernel << " row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, ConvStudents, ::testing::Values("lstm", "sru", "srupp"));

// model.json -> make_tagger -> the same model (kdx-tag and export load students this way),
// with the BatchNorm statistics travelling in the weights file; a description without the
// new keys builds today's student.
TEST(Student, ConvConfigRoundTripsThroughModelJson) {
  test::TempDir dir;
  StudentConfig c;
  c.arch = "srupp";
  c.vocab_size = 30;
  c.emb = 8;
  c.hidden = 4;
  c.layers = 2;
  c.proj = 4;
  c.attention_dropout = 0.1;
  c.conv.kernels = {1, 3};
  c.conv.channels = {8, 6};
  c.conv.dropout = 0.2;
  torch::manual_seed(2);
  StudentTaggerImpl a(c);
  {
    torch::NoGradGuard g;
    a.forward(torch::randint(1, 30, {4, 6}, torch::kInt64), torch::ones({4, 6}, torch::kInt64));
  }
  a.eval();
  auto desc = nlohmann::json::parse(a.describe().dump());
  EXPECT_EQ(desc["conv"],
            (nlohmann::json{{"kernels", {1, 3}}, {"channels", {8, 6}}, {"dropout", 0.2}}));
  EXPECT_EQ(desc["attention_dropout"], 0.1);
  training::save_weights(a, dir.file("w.safetensors"));
  auto b = make_tagger(desc);
  training::load_weights(*b, dir.file("w.safetensors"));
  b->eval();
  EXPECT_EQ(b->describe(), a.describe());
  auto ids = torch::randint(1, 30, {2, 6}, torch::kInt64);
  auto mask = torch::ones({2, 6}, torch::kInt64);
  EXPECT_TRUE(torch::allclose(a.infer(ids, mask), b->infer(ids, mask)));
  StudentConfig plain;
  plain.vocab_size = 30;
  auto old = student_config_to_json(plain);
  EXPECT_FALSE(old.contains("conv"));
  EXPECT_FALSE(old.contains("attention_dropout"));
  auto rebuilt = make_tagger(old);
  EXPECT_FALSE(std::dynamic_pointer_cast<StudentTaggerImpl>(rebuilt)->conv);
  EXPECT_EQ(rebuilt->describe(), StudentTaggerImpl(plain).describe());
}

// The student stage's own checks of conv (what the parameter table cannot express) name the
// run.json file and the field.
TEST(Student, BadConvParamsNameTheRunJsonField) {
  training::RunSpec spec;
  spec.path = "/runs/x/run.json";
  spec.params = {{"arch", "lstm"}, {"emb", 8},       {"hidden", 4}, {"layers", 1},
                 {"proj", 0},      {"dropout", 0.1}, {"seed", 1},   {"init_embedding", false}};
  training::Prepared prep;
  auto error_of = [&](const nlohmann::json& conv) {
    if (!conv.is_null()) spec.params["conv"] = conv;
    try {
      training::make_student(spec, prep, "");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of({{"kernels", {3, 4}}, {"channels", {6}}}),
            "/runs/x/run.json: params.conv.kernels: 4 is not an odd width >= 1 ('same' padding "
            "needs odd widths)");
  EXPECT_EQ(error_of({{"channels", {8}}}),
            "/runs/x/run.json: params.conv.channels: 8 is not a positive multiple of the 3 kernel "
            "widths (each layer's channels are split equally)");
  EXPECT_EQ(error_of({{"kernels", {1, 3, 5}}}),
            "/runs/x/run.json: params.conv.channels: missing (each conv layer's output channels, "
            "e.g. [768, 384]; [] for no front-end)");
  spec.params.erase("conv");
  spec.params["arch"] = "sru";
  spec.params["residual"] = true;
  EXPECT_EQ(error_of(nlohmann::json()),
            "/runs/x/run.json: params.residual: LSTM only (SRU and SRU++ have their highway)");
  spec.params.erase("residual");
  spec.params["forget_bias"] = 1.0;
  EXPECT_EQ(error_of(nlohmann::json()),
            "/runs/x/run.json: params.forget_bias: LSTM only (SRU and SRU++: highway_bias)");
}

// Malakhov (2022): RuBERT's 119,547 x 768 wordpiece embedding (frozen), conv 768 -> 768 -> 384
// with kernels 1, 3, 5, four bidirectional layers of 192 per direction, SRU++ attention 96,
// a head of 29 entity types x 5 classes. The paper reports 6.3M / 4.5M / 3.4M trainable
// parameters (its embedding frozen) against BERT's 85.5M without word embeddings.
TEST(ParamCount, PapersStudentsAtFullSize) {
  const int64_t V = 119547, E = 768, H = 192, L = 4, A = 96, out = 29 * 5;
  auto conv = [](int64_t in, int64_t ch, int64_t kernel_sum, int64_t n_kernels) {
    return in * (ch / n_kernels) * kernel_sum + ch + 2 * ch;  // weights, biases, BN scale/shift
  };
  const int64_t front = conv(E, 768, 1 + 3 + 5, 3) + conv(768, 384, 1 + 3 + 5, 3);
  const int64_t head = 2 * H * out + out;
  // Every recurrent layer reads 384 = 2 x 192: the first from the conv's last layer.
  const int64_t lstm_layer = 2 * (4 * H * (384 + H) + 2 * 4 * H);     // PyTorch's two bias vectors
  const int64_t sru_layer = 384 * 2 * H * 3 + 2 * 2 * H + 2 * 2 * H;  // W (3 blocks), v, b
  // q (384 -> A), k and v (A -> A), o (A -> 3 blocks), LayerNorm, the rezero alpha, v, b.
  const int64_t srupp_layer =
      384 * A + 2 * A * A + A * 2 * H * 3 + 2 * A + 1 + 2 * 2 * H + 2 * 2 * H;
  const std::map<std::string, int64_t> want = {{"lstm", front + L * lstm_layer + head},
                                               {"sru", front + L * sru_layer + head},
                                               {"srupp", front + L * srupp_layer + head}};
  for (auto& [arch, no_embedding] : want) {
    StudentConfig c;
    c.arch = arch;
    c.vocab_size = static_cast<int>(V);
    c.emb = static_cast<int>(E);
    c.hidden = static_cast<int>(H);
    c.layers = static_cast<int>(L);
    c.proj = static_cast<int>(A);
    c.highway_bias = arch == "lstm" ? 0.0 : -2.0;
    c.attention_dropout = 0.1;
    c.columns = 29;
    c.classes = 5;
    c.conv.kernels = {1, 3, 5};
    c.conv.channels = {768, 384};
    c.conv.dropout = 0.1;
    StudentTaggerImpl m(c);
    m.embedding->weight.requires_grad_(false);  // the paper's frozen embedding
    auto n = count_parameters(m);
    EXPECT_EQ(n.embedding, V * E) << arch;
    EXPECT_EQ(n.no_embedding(), no_embedding) << arch;
    EXPECT_EQ(n.total, V * E + no_embedding) << arch;
    EXPECT_EQ(n.trainable, no_embedding) << arch;
    std::printf("[ params   ] Conv%s: total %.3fM, without the embedding %.3fM (%lld)\n",
                arch == "lstm"  ? "LSTM"
                : arch == "sru" ? "SRU"
                                : "SRU++",
                static_cast<double>(n.total) / 1e6, static_cast<double>(n.no_embedding()) / 1e6,
                static_cast<long long>(n.no_embedding()));
  }
  // The paper's rounded figures.
  EXPECT_NEAR(static_cast<double>(want.at("lstm")), 6.3e6, 0.05e6);
  EXPECT_NEAR(static_cast<double>(want.at("sru")), 4.5e6, 0.05e6);
  EXPECT_NEAR(static_cast<double>(want.at("srupp")), 3.4e6, 0.05e6);
}

// The teacher is counted the same way: its word-embedding table apart, position and segment
// embeddings in the body.
TEST(ParamCount, TeacherWordEmbeddingsOnly) {
  BertTaggerImpl t(tiny_bert(), 2, 3);
  auto n = count_parameters(t);
  EXPECT_EQ(n.total, parameter_count(t));
  EXPECT_EQ(n.trainable, n.total);
  EXPECT_EQ(n.embedding, 30 * 16);
  EXPECT_EQ(n.no_embedding(), n.total - 30 * 16);
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
