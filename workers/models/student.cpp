#include "workers/models/student.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "common/error.h"
#include "workers/data/json_fields.h"
#include "workers/models/bert.h"
#include "workers/models/lstm_train.h"

namespace kdx::models {

StudentConfig student_config_from_json(const nlohmann::json& j, const std::string& where) {
  data::JsonFields f(j, where);
  StudentConfig c;
  c.arch = f.string("arch", c.arch);
  if (c.arch != "lstm" && c.arch != "sru" && c.arch != "srupp")
    throw Error((where.empty() ? "" : where + ": arch: ") + "unknown student architecture '" +
                c.arch + "' (expected lstm, sru, srupp)");
  c.vocab_size = f.integer("vocab_size");
  c.input_vocab = f.integer("input_vocab", 0);
  c.highway_bias = f.number("highway_bias", 0.0);
  c.rescale = f.boolean("rescale", false);
  c.attention_dropout = f.number("attention_dropout", 0.0);
  c.residual = f.boolean("residual", false);
  if (f.has("conv")) {
    auto v = f.object("conv");
    c.conv.kernels = v.integers("kernels", c.conv.kernels);
    c.conv.channels = v.integers("channels", c.conv.channels);
    c.conv.dropout = v.number("dropout", c.conv.dropout);
  }
  c.emb = f.integer("emb", c.emb);
  c.hidden = f.integer("hidden", c.hidden);
  c.layers = f.integer("layers", c.layers);
  c.proj = f.integer("proj", c.proj);
  c.dropout = f.number("dropout", c.dropout);
  c.teacher_hidden = f.integer("teacher_hidden", 0);
  c.columns = f.integer("columns", 1);
  c.classes = f.integer("classes", 3);
  if (f.has("vectors")) {
    f.object("vectors");  // present and an object
    c.vectors = vectors_config_from_json(j["vectors"], where);
  }
  return c;
}

nlohmann::json student_config_to_json(const StudentConfig& c) {
  nlohmann::json j = {{"arch", c.arch},
                      {"vocab_size", c.vocab_size},
                      {"emb", c.emb},
                      {"hidden", c.hidden},
                      {"layers", c.layers},
                      {"proj", c.proj},
                      {"dropout", c.dropout},
                      {"teacher_hidden", c.teacher_hidden},
                      {"columns", c.columns},
                      {"classes", c.classes},
                      {"input_vocab", c.input_vocab},
                      {"highway_bias", c.highway_bias},
                      {"rescale", c.rescale}};
  // Written only when set, so a model without them describes itself as before.
  if (c.attention_dropout != 0) j["attention_dropout"] = c.attention_dropout;
  if (c.residual) j["residual"] = true;
  if (c.vectors.enabled()) j["vectors"] = vectors_config_to_json(c.vectors);
  if (c.conv.layers() > 0)
    j["conv"] = {
        {"kernels", c.conv.kernels}, {"channels", c.conv.channels}, {"dropout", c.conv.dropout}};
  return j;
}

StudentTaggerImpl::StudentTaggerImpl(const StudentConfig& c) : config(c) {
  if (c.arch != "lstm" && c.arch != "sru" && c.arch != "srupp")
    throw Error("unknown student architecture '" + c.arch + "' (expected lstm, sru, srupp)");
  columns = c.columns;
  classes = c.classes;
  int emb_dim = c.teacher_hidden > 0 ? c.teacher_hidden : c.emb;
  embedding = register_module("embedding", torch::nn::Embedding(c.vocab_size, emb_dim));
  torch::nn::init::normal_(embedding->weight, 0.0, 0.1);
  if (c.teacher_hidden > 0)
    emb_proj = register_module("emb_proj", torch::nn::Linear(c.teacher_hidden, c.emb));
  int rnn_in = c.emb;
  if (c.vectors.enabled()) {
    vectors = register_module("vectors", WordVectorInput(c.vectors, c.emb));
    if (c.vectors.join == "concat") rnn_in += vectors->output_size();
  }
  if (c.conv.layers() > 0) {
    conv = register_module("conv", ConvFrontend(rnn_in, c.conv));
    rnn_in = conv->output_size();
  }
  if (c.arch == "lstm") {
    lstm_fwd = register_module("lstm_fwd", torch::nn::ModuleList());
    lstm_bwd = register_module("lstm_bwd", torch::nn::ModuleList());
    for (int i = 0; i < c.layers; ++i) {
      int in = i == 0 ? rnn_in : 2 * c.hidden;
      lstm_fwd->push_back(torch::nn::LSTM(torch::nn::LSTMOptions(in, c.hidden).batch_first(true)));
      lstm_bwd->push_back(torch::nn::LSTM(torch::nn::LSTMOptions(in, c.hidden).batch_first(true)));
    }
  } else {
    sru = register_module("sru", torch::nn::ModuleList());
    SruOptions o;
    o.attention_dim = c.arch == "srupp" ? (c.proj > 0 ? c.proj : c.hidden) : 0;
    o.highway_bias = c.highway_bias;
    o.rescale = c.rescale;
    o.attention_dropout = c.attention_dropout;
    o.dropout = c.dropout;  // every layer's output is dropped out (before the next or the head)
    for (int i = 0; i < c.layers; ++i)
      sru->push_back(SruLayer(i == 0 ? rnn_in : 2 * c.hidden, c.hidden, o));
  }
  dropout = register_module("dropout", torch::nn::Dropout(c.dropout));
  head = register_module("head", torch::nn::Linear(2 * c.hidden, c.columns * c.classes));
  if (c.input_vocab > 0)
    vocab_map = register_buffer("vocab_map", torch::zeros({c.input_vocab}, torch::kInt64));
}

torch::Tensor StudentTaggerImpl::embed(const torch::Tensor& ids, const torch::Tensor& words) {
  auto rows = vocab_map.defined() ? vocab_map.index_select(0, ids.reshape({-1})).view_as(ids) : ids;
  auto x = embedding(rows);
  if (emb_proj) x = emb_proj(x);
  if (vectors) {
    auto v = vectors(words).to(x.scalar_type());
    x = config.vectors.join == "sum" ? x + v : torch::cat({x, v}, 2);
  }
  return x;
}

torch::Tensor StudentTaggerImpl::rnn_input_infer(const torch::Tensor& ids,
                                                 const torch::Tensor& mask,
                                                 const torch::Tensor& words) {
  auto x = embed(ids, words);
  return conv ? conv->infer(x, mask) : x;
}

namespace {

// One direction of one layer in training: kdx's recurrence where it serves (CPU float), else
// ATen's (GPUs: cuDNN). Both from a zero state, over padding too.
torch::Tensor lstm_direction(const std::shared_ptr<torch::nn::Module>& m, const torch::Tensor& x) {
  auto p = m->named_parameters();
  if (!lstm_train_serves(x, p["weight_hh_l0"]))
    return std::get<0>(m->as<torch::nn::LSTMImpl>()->forward(x));
  return lstm_train(x, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]);
}

// Each row reversed within its length; positions past the length stay where they are.
torch::Tensor reverse_padded(const torch::Tensor& x, const torch::Tensor& lengths) {
  auto B = x.size(0), T = x.size(1);
  // No padding: a plain reversal (asked on a CPU only: the check would wait for a GPU).
  if (x.is_cpu() && lengths.min().item<int64_t>() == T) return x.flip(1);
  auto len = lengths.to(x.device()).unsqueeze(1);
  auto t = torch::arange(T, len.options()).unsqueeze(0).expand({B, T});
  auto idx = torch::where(t < len, len - 1 - t, t);
  return x.gather(1, idx.unsqueeze(2).expand_as(x));
}

}  // namespace

torch::Tensor StudentTaggerImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask,
                                         const torch::Tensor& words) {
  auto lengths = mask.sum(1).to(torch::kInt64);  // on the mask's device: no host sync
  auto x = dropout(embed(ids, words));
  if (conv) x = conv(x, mask);
  torch::Tensor h;
  if (lstm_fwd) {
    h = x;
    for (size_t i = 0; i < lstm_fwd->size(); ++i) {
      auto in = h;
      if (i > 0) h = dropout(h);
      auto f = lstm_direction(lstm_fwd[i], h);
      auto r = lstm_direction(lstm_bwd[i], reverse_padded(h, lengths));
      h = torch::cat({f, reverse_padded(r, lengths)}, 2);
      if (config.residual && i > 0) h = h + in;  // the input before dropout, as at inference
    }
  } else {
    h = x;
    for (size_t i = 0; i < sru->size(); ++i) {
      h = sru[i]->as<SruLayerImpl>()->forward(h, mask, lengths);
      if (i + 1 < sru->size()) h = dropout(h);
    }
  }
  return head(dropout(h));
}

// Per layer and direction: Xp = x W_ih^T + b (one GEMM over all steps), then per step
// gates = Xp_t + h W_hh^T (into a preallocated buffer) and the cell update as a plain loop.
// Rows past their length keep a zero state, so reverse runs start correctly. At batch 1 the
// recurrent product is a matrix-vector product (BLAS gemv): OpenBLAS runs a 1-row GEMM 4-5x
// slower than gemv on the same data (the ATen LSTM, like Python's, takes the GEMM).
torch::Tensor StudentTaggerImpl::lstm_infer(torch::Tensor x, const torch::Tensor& lengths) {
  const int64_t B = x.size(0), T = x.size(1), H = config.hidden;
  const int64_t* len = lengths.data_ptr<int64_t>();
  for (int layer = 0; layer < config.layers; ++layer) {
    auto out = torch::zeros({B, T, 2 * H}, x.options());
    for (int dir = 0; dir < 2; ++dir) {
      auto params = (dir ? lstm_bwd : lstm_fwd)[static_cast<size_t>(layer)]->named_parameters();
      auto w_ih = params["weight_ih_l0"], w_hh = params["weight_hh_l0"];
      auto bias = params["bias_ih_l0"] + params["bias_hh_l0"];
      auto xp = torch::addmm(bias, x.reshape({B * T, x.size(2)}), w_ih.t())
                    .view({B, T, 4 * H})
                    .contiguous();
      auto w_hh_t = B == 1 ? torch::Tensor() : w_hh.t().contiguous();
      auto h = torch::zeros({B, H}), c = torch::zeros({B, H}), gates = torch::empty({B, 4 * H});
      auto h_row = h[0], gates_row = gates[0];  // views, made once: gemv operands at batch 1
      float *ph = h.data_ptr<float>(), *pc = c.data_ptr<float>(), *pg = gates.data_ptr<float>();
      const float* pxp = xp.data_ptr<float>();
      float* po = out.data_ptr<float>();
      for (int64_t step = 0; step < T; ++step) {
        int64_t t = dir ? T - 1 - step : step;
        if (B == 1)
          at::mv_out(gates_row, w_hh, h_row);
        else
          at::mm_out(gates, h, w_hh_t);
        for (int64_t bi = 0; bi < B; ++bi) {
          float* g = pg + bi * 4 * H;
          const float* xt = pxp + (bi * T + t) * 4 * H;
          float* hb = ph + bi * H;
          float* cb = pc + bi * H;
          bool valid = t < len[bi];
          for (int64_t j = 0; j < H; ++j) {
            float i = 1.f / (1.f + std::exp(-(g[j] + xt[j])));
            float f = 1.f / (1.f + std::exp(-(g[H + j] + xt[H + j])));
            float gg = std::tanh(g[2 * H + j] + xt[2 * H + j]);
            float o = 1.f / (1.f + std::exp(-(g[3 * H + j] + xt[3 * H + j])));
            float cn = f * cb[j] + i * gg;
            float hn = o * std::tanh(cn);
            cb[j] = valid ? cn : 0.f;
            hb[j] = valid ? hn : 0.f;
            po[(bi * T + t) * 2 * H + dir * H + j] = valid ? hn : 0.f;
          }
        }
      }
    }
    x = config.residual && layer > 0 ? out + x : out;
  }
  return x;
}

torch::Tensor StudentTaggerImpl::aten_infer(const torch::Tensor& ids, const torch::Tensor& mask,
                                            const torch::Tensor& words) {
  if (lstm_fwd && mask.all().item<bool>()) {
    // No padding: both directions of a layer in one fused bidirectional ATen call, as
    // Python's nn.LSTM(bidirectional=True) runs them (padded batches need the per-direction
    // reversal of forward()).
    auto x = rnn_input_infer(ids, mask, words);
    for (size_t i = 0; i < lstm_fwd->size(); ++i) {
      auto f = lstm_fwd[i]->named_parameters(), b = lstm_bwd[i]->named_parameters();
      std::vector<torch::Tensor> params = {f["weight_ih_l0"], f["weight_hh_l0"], f["bias_ih_l0"],
                                           f["bias_hh_l0"],   b["weight_ih_l0"], b["weight_hh_l0"],
                                           b["bias_ih_l0"],   b["bias_hh_l0"]};
      auto h0 = torch::zeros({2, x.size(0), config.hidden}, x.options());
      auto y = std::get<0>(torch::lstm(x, {h0, h0}, params, /*has_biases=*/true,
                                       /*num_layers=*/1, /*dropout=*/0.0, /*train=*/false,
                                       /*bidirectional=*/true, /*batch_first=*/true));
      x = config.residual && i > 0 ? y + x : y;
    }
    return head(x);
  }
  bool was_training = is_training();
  eval();
  auto out = forward(ids, mask, words);
  train(was_training);
  return out;
}

std::string StudentTaggerImpl::chosen_lstm_kernel(int64_t batch) const {
  auto it = chosen_.find(batch);
  return it == chosen_.end() ? "" : it->second;
}

bool StudentTaggerImpl::fused_ok(const torch::Tensor& ids) const {
  return kernels::available() && ids.device().is_cpu() && config.hidden % 16 == 0 &&
         head->weight.scalar_type() == torch::kFloat32;
}

torch::Tensor StudentTaggerImpl::lstm_fused(torch::Tensor x, const torch::Tensor& lengths) {
  const int64_t B = x.size(0), T = x.size(1), H = config.hidden;
  const size_t slots = 2 * static_cast<size_t>(config.layers);
  if (packed_.size() != slots) {
    packed_.assign(slots, {});
    packed_from_.assign(slots, {nullptr, -1});
  }
  for (int layer = 0; layer < config.layers; ++layer) {
    auto out = torch::zeros({B, T, 2 * H}, x.options());
    torch::Tensor xp[2];
    for (int dir = 0; dir < 2; ++dir) {
      auto params = (dir ? lstm_bwd : lstm_fwd)[static_cast<size_t>(layer)]->named_parameters();
      auto w_hh = params["weight_hh_l0"];
      const size_t slot = static_cast<size_t>(layer) * 2 + static_cast<size_t>(dir);
      std::pair<const void*, int64_t> from{w_hh.data_ptr(), w_hh._version()};
      if (packed_from_[slot] != from) {
        auto w = w_hh.contiguous();
        packed_[slot] = kernels::pack_lstm(w.data_ptr<float>(), H);
        packed_from_[slot] = from;
      }
      xp[dir] = torch::addmm(params["bias_ih_l0"] + params["bias_hh_l0"],
                             x.reshape({B * T, x.size(2)}), params["weight_ih_l0"].t())
                    .contiguous();
    }
    kernels::LstmDirection dirs[2];
    for (int dir = 0; dir < 2; ++dir) {
      kernels::LstmDirection& a = dirs[dir];
      a.w_hh = &packed_[static_cast<size_t>(layer) * 2 + static_cast<size_t>(dir)];
      a.xp = xp[dir].data_ptr<float>();
      a.lengths = lengths.data_ptr<int64_t>();
      a.batch = B;
      a.time = T;
      a.hidden = H;
      a.reverse = dir == 1;
      a.out = out.data_ptr<float>() + dir * H;
      a.out_stride = 2 * H;
    }
    kernels::lstm_layer(dirs[0], dirs[1], lstm_threads > 0 ? lstm_threads : at::get_num_threads());
    x = config.residual && layer > 0 ? out.add_(x) : out;
  }
  return x;
}

torch::Tensor StudentTaggerImpl::infer(const torch::Tensor& ids, const torch::Tensor& mask,
                                       const torch::Tensor& words) {
  torch::NoGradGuard g;
  std::string kernel = lstm_kernel;
  if (kernel.empty()) {
    const char* env = std::getenv("KDX_LSTM_KERNEL");
    kernel = env && *env ? env : "auto";
  }
  if (kernel != "auto" && kernel != "fused" && kernel != "loop" && kernel != "aten")
    throw Error("KDX_LSTM_KERNEL / lstm_kernel: '" + kernel + "' is not auto, fused, loop or aten");
  if (kernel == "fused" && !fused_ok(ids))
    throw Error(std::string("KDX_LSTM_KERNEL / lstm_kernel: fused needs a CPU with AVX2 or "
                            "AVX-512 (this one: '") +
                kernels::isa() + "'), float weights on the CPU and a hidden size that is a " +
                "multiple of 16 (this model: " + std::to_string(config.hidden) + ")");
  const bool fused = kernel == "fused" || (kernel == "auto" && fused_ok(ids));
  auto lengths = [&] { return mask.sum(1).to(torch::kInt64).contiguous(); };
  if (!lstm_fwd) {
    if (!fused) return aten_infer(ids, mask, words);
    auto len = lengths();
    auto h = rnn_input_infer(ids, mask, words);
    for (size_t i = 0; i < sru->size(); ++i) h = sru[i]->as<SruLayerImpl>()->infer(h, mask, len);
    return head(h);
  }
  if (fused) return head(lstm_fused(rnn_input_infer(ids, mask, words).contiguous(), lengths()));
  if (!ids.device().is_cpu()) return aten_infer(ids, mask, words);
  auto loop = [&] {
    return head(lstm_infer(rnn_input_infer(ids, mask, words).contiguous(), lengths()));
  };
  if (kernel == "loop") return loop();
  if (kernel == "aten") return aten_infer(ids, mask, words);
  int64_t key = ids.size(0);
  auto known = chosen_.find(key);
  if (known != chosen_.end())
    return known->second == "loop" ? loop() : aten_infer(ids, mask, words);
  // First call at this batch size: one warm-up each, then the best of 3 runs each decides.
  auto time_of = [](auto&& run) {
    run();
    double best = 1e300;
    for (int i = 0; i < 3; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      run();
      best = std::min(best,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  double t_loop = time_of(loop), t_aten = time_of([&] { return aten_infer(ids, mask, words); });
  chosen_[key] = t_loop <= t_aten ? "loop" : "aten";
  return chosen_[key] == "loop" ? loop() : aten_infer(ids, mask, words);
}

nlohmann::json StudentTaggerImpl::describe() const {
  auto j = student_config_to_json(config);
  j["stage"] = "student";
  return j;
}

void init_forget_bias(StudentTaggerImpl& model, double bias) {
  if (!model.lstm_fwd) throw Error("forget_bias: the model is not an LSTM");
  torch::NoGradGuard no_grad;
  const int64_t H = model.config.hidden;
  for (auto* list : {&model.lstm_fwd, &model.lstm_bwd})
    for (auto& m : **list) {
      auto params = m->named_parameters();
      params["bias_ih_l0"].narrow(0, H, H).fill_(bias);  // gates in torch's order i, f, g, o
      params["bias_hh_l0"].narrow(0, H, H).zero_();
    }
}

Tagger make_tagger(const nlohmann::json& d, const std::string& where) {
  data::JsonFields f(d, where);
  if (f.string("arch", "") == "bert") {
    f.object("bert");  // present and an object
    auto cfg = bert_config_from_hf(d["bert"], where.empty() ? "model.json" : where, "bert");
    return std::make_shared<BertTaggerImpl>(cfg, f.integer("columns"), f.integer("classes"));
  }
  return std::make_shared<StudentTaggerImpl>(student_config_from_json(d, where));
}

}  // namespace kdx::models
