#include "workers/models/sru.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "workers/models/recurrent_kernels.h"

namespace kdx::models {
namespace {

inline float sigmoid(float x) {
  return 1.f / (1.f + std::exp(-x));
}

// Strides of the [B, T, 2, D, K] layout for one chain (b, dir, d). The shared highway input
// x [B, T, 2, D] and the outputs h, c [B, T, 2, D] have the same index.
struct Layout {
  int64_t T, D, K;
  bool own_highway;  // K == 4
  int64_t u(int64_t b, int64_t t, int64_t dir, int64_t d) const {
    return (((b * T + t) * 2 + dir) * D + d) * K;
  }
  int64_t h(int64_t b, int64_t t, int64_t dir, int64_t d) const {
    return ((b * T + t) * 2 + dir) * D + d;
  }
};

class SruFunction : public torch::autograd::Function<SruFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor U,
                               torch::Tensor x, torch::Tensor v, torch::Tensor b,
                               torch::Tensor lengths, double scale_x) {
    U = U.contiguous();
    v = v.contiguous();
    b = b.contiguous();
    const int64_t B = U.size(0);
    Layout L{U.size(1), U.size(3), U.size(4), U.size(4) == 4};
    if (!L.own_highway) x = x.contiguous();
    auto h = torch::empty({B, L.T, 2, L.D}, U.options());
    auto c_all = torch::empty({B, L.T, 2, L.D}, U.options());
    const float *pu = U.data_ptr<float>(), *pv = v.data_ptr<float>(), *pb = b.data_ptr<float>();
    const float* px = L.own_highway ? nullptr : x.data_ptr<float>();
    const int64_t* pl = lengths.data_ptr<int64_t>();
    float *ph = h.data_ptr<float>(), *pc = c_all.data_ptr<float>();
    const float s = static_cast<float>(scale_x);
    at::parallel_for(0, B * 2 * L.D, 32, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        int64_t bi = k / (2 * L.D), dir = (k / L.D) % 2, d = k % L.D, len = pl[bi];
        float vf = pv[(dir * 2) * L.D + d], vr = pv[(dir * 2 + 1) * L.D + d];
        float bf = pb[(dir * 2) * L.D + d], br = pb[(dir * 2 + 1) * L.D + d];
        float c = 0.f;
        for (int64_t t = len; t < L.T; ++t) ph[L.h(bi, t, dir, d)] = pc[L.h(bi, t, dir, d)] = 0.f;
        for (int64_t step = 0; step < len; ++step) {
          int64_t t = dir ? len - 1 - step : step;
          const float* u = pu + L.u(bi, t, dir, d);
          int64_t i = L.h(bi, t, dir, d);
          float xh = L.own_highway ? u[3] : s * px[i];
          float f = sigmoid(u[1] + vf * c + bf);
          float r = sigmoid(u[2] + vr * c + br);
          c = f * c + (1.f - f) * u[0];
          pc[i] = c;
          ph[i] = r * c + (1.f - r) * xh;
        }
      }
    });
    ctx->save_for_backward({U, x, v, b, lengths, c_all});
    ctx->saved_data["scale_x"] = scale_x;
    return h;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto U = saved[0], x = saved[1], v = saved[2], b = saved[3], lengths = saved[4],
         c_all = saved[5];
    const float s = static_cast<float>(ctx->saved_data["scale_x"].toDouble());
    auto dh = grads[0].contiguous();
    const int64_t B = U.size(0);
    Layout L{U.size(1), U.size(3), U.size(4), U.size(4) == 4};
    auto dU = torch::zeros_like(U);
    torch::Tensor dx = L.own_highway ? torch::Tensor() : torch::zeros_like(x);
    // Per-chain partial sums of dv and db, reduced after the parallel loop.
    auto dv_part = torch::zeros({B, 2, 2, L.D}, U.options()),
         db_part = torch::zeros({B, 2, 2, L.D}, U.options());
    const float *pu = U.data_ptr<float>(), *pv = v.data_ptr<float>(), *pb = b.data_ptr<float>();
    const float* px = L.own_highway ? nullptr : x.data_ptr<float>();
    const float *pc = c_all.data_ptr<float>(), *pdh = dh.data_ptr<float>();
    const int64_t* pl = lengths.data_ptr<int64_t>();
    float* pdu = dU.data_ptr<float>();
    float* pdx = L.own_highway ? nullptr : dx.data_ptr<float>();
    float *pdv = dv_part.data_ptr<float>(), *pdb = db_part.data_ptr<float>();
    // Every chain owns its cells of dU and dx (each direction reads its own half of x), so
    // chains run in parallel without sharing a write.
    at::parallel_for(0, B * 2 * L.D, 32, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        int64_t bi = k / (2 * L.D), dir = (k / L.D) % 2, d = k % L.D, len = pl[bi];
        float vf = pv[(dir * 2) * L.D + d], vr = pv[(dir * 2 + 1) * L.D + d];
        float bf = pb[(dir * 2) * L.D + d], br = pb[(dir * 2 + 1) * L.D + d];
        float dc_next = 0.f, dvf = 0.f, dvr = 0.f, dbf = 0.f, dbr = 0.f;
        for (int64_t step = len - 1; step >= 0; --step) {
          int64_t t = dir ? len - 1 - step : step;
          int64_t prev_t = dir ? t + 1 : t - 1;
          float c_prev = step > 0 ? pc[L.h(bi, prev_t, dir, d)] : 0.f;
          int64_t ui = L.u(bi, t, dir, d), i = L.h(bi, t, dir, d);
          const float* u = pu + ui;
          float xh = L.own_highway ? u[3] : s * px[i];
          float f = sigmoid(u[1] + vf * c_prev + bf);
          float r = sigmoid(u[2] + vr * c_prev + br);
          float c = pc[i];
          float g = pdh[i];
          float dc = dc_next + g * r;
          float dr_pre = g * (c - xh) * r * (1.f - r);
          float df_pre = dc * (c_prev - u[0]) * f * (1.f - f);
          float* du = pdu + ui;
          du[0] = dc * (1.f - f);
          du[1] = df_pre;
          du[2] = dr_pre;
          if (L.own_highway)
            du[3] = g * (1.f - r);
          else
            pdx[i] = g * (1.f - r) * s;
          dc_next = dc * f + df_pre * vf + dr_pre * vr;
          dvf += df_pre * c_prev;
          dvr += dr_pre * c_prev;
          dbf += df_pre;
          dbr += dr_pre;
        }
        int64_t o = ((bi * 2 + dir) * 2) * L.D + d;
        pdv[o] = dvf;
        pdv[o + L.D] = dvr;
        pdb[o] = dbf;
        pdb[o + L.D] = dbr;
      }
    });
    return {dU, dx, dv_part.sum(0), db_part.sum(0), torch::Tensor(), torch::Tensor()};
  }
};

// Uniform with variance 1/fan_in, the reference's choice for SRU projections.
void init_uniform_var(torch::Tensor w, int64_t fan_in) {
  double r = std::sqrt(3.0 / static_cast<double>(fan_in));
  w.uniform_(-r, r);
}

void init_xavier(torch::Tensor w) {
  double r = std::sqrt(6.0 / static_cast<double>(w.size(0) + w.size(1)));
  w.uniform_(-r, r);
}

}  // namespace

torch::Tensor sru_bidirectional(const torch::Tensor& U, const torch::Tensor& x,
                                const torch::Tensor& v, const torch::Tensor& b,
                                const torch::Tensor& lengths, double scale_x) {
  // The recurrence accumulates its cell state in fp32 whatever autocast produced U in: a
  // bf16 c_t loses the small per-step updates over a long window.
  auto f32 = [](const torch::Tensor& t) {
    return t.defined() && t.scalar_type() != torch::kFloat32 ? t.to(torch::kFloat32) : t;
  };
  auto U32 = f32(U), x32 = U.size(4) == 4 ? x : f32(x), v32 = f32(v), b32 = f32(b);
  if (!U32.device().is_cpu()) return sru_bidirectional_naive(U32, x32, v32, b32, lengths, scale_x);
  auto xx = U32.size(4) == 4 ? torch::zeros({0}, U32.options()) : x32;
  return SruFunction::apply(U32, xx, v32, b32,
                            lengths.to(torch::kCPU).to(torch::kInt64).contiguous(), scale_x);
}

torch::Tensor sru_bidirectional_naive(const torch::Tensor& U, const torch::Tensor& x,
                                      const torch::Tensor& v, const torch::Tensor& b,
                                      const torch::Tensor& lengths, double scale_x) {
  const int64_t B = U.size(0), T = U.size(1), D = U.size(3);
  bool own = U.size(4) == 4;
  auto len = lengths.to(U.device()).to(torch::kInt64);
  auto valid = (torch::arange(T, len.options()).unsqueeze(0) < len.unsqueeze(1))
                   .to(U.dtype())
                   .unsqueeze(2);  // [B, T, 1]
  auto x_halves = own ? torch::Tensor() : x.reshape({B, T, 2, D}) * scale_x;
  std::vector<torch::Tensor> dirs;
  for (int dir = 0; dir < 2; ++dir) {
    auto u = U.select(2, dir);                                 // [B, T, D, K]
    auto xh = own ? u.select(3, 3) : x_halves.select(2, dir);  // [B, T, D]
    // Direction 1 reads each row backwards from its own last valid step: index t -> len-1-t.
    torch::Tensor idx;
    if (dir == 1) {
      auto t = torch::arange(T, len.options()).unsqueeze(0).expand({B, T});
      idx = torch::where(t < len.unsqueeze(1), len.unsqueeze(1) - 1 - t, t);
      u = u.gather(1, idx.view({B, T, 1, 1}).expand_as(u));
      xh = xh.gather(1, idx.view({B, T, 1}).expand_as(xh));
    }
    auto us = u.unbind(1);  // unbind once: per-step indexing makes backward crawl
    auto xs = xh.unbind(1);
    auto ms = valid.unbind(1);
    std::vector<torch::Tensor> hs(static_cast<size_t>(T));
    auto c = torch::zeros({B, D}, U.options());
    for (int64_t t = 0; t < T; ++t) {
      auto& ut = us[static_cast<size_t>(t)];
      auto m = ms[static_cast<size_t>(t)];
      auto f = torch::sigmoid(ut.select(2, 1) + v[dir][0] * c + b[dir][0]);
      auto r = torch::sigmoid(ut.select(2, 2) + v[dir][1] * c + b[dir][1]);
      auto c_new = f * c + (1 - f) * ut.select(2, 0);
      hs[static_cast<size_t>(t)] = (r * c_new + (1 - r) * xs[static_cast<size_t>(t)]) * m;
      c = m * c_new + (1 - m) * c;
    }
    auto h = torch::stack(hs, 1);  // [B, T, D]
    if (dir == 1) h = h.gather(1, idx.view({B, T, 1}).expand_as(h));
    dirs.push_back(h);
  }
  return torch::stack(dirs, 2);  // [B, T, 2, D]
}

SruLayerImpl::SruLayerImpl(int in, int hid, SruOptions opt) : input(in), hidden(hid), options(opt) {
  blocks = input == 2 * hidden ? 3 : 4;
  scale_x = options.rescale ? std::sqrt(1.0 + 2.0 * std::exp(options.highway_bias)) : 1.0;
  auto linear = [](int a, int b) {
    return torch::nn::Linear(torch::nn::LinearOptions(a, b).bias(false));
  };
  torch::NoGradGuard no_grad;
  torch::nn::Linear out{nullptr};  // the matrix that produces U
  if (options.attention_dim > 0) {
    const int a = options.attention_dim;
    q = register_module("q", linear(input, a));
    key = register_module("k", linear(a, a));
    value = register_module("v_proj", linear(a, a));
    o = register_module("o", linear(a, 2 * hidden * blocks));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({a})));
    // Rezero: the attention's contribution starts at 0, so the layer starts as an SRU with a
    // low-rank input projection (the reference's rezero_init_alpha).
    alpha = register_parameter("alpha", torch::zeros({1}));
    for (auto& m : {q, key, value, o}) init_xavier(m->weight);
    out = o;
  } else {
    W = register_module("W", linear(input, 2 * hidden * blocks));
    init_uniform_var(W->weight, input);
    out = W;
  }
  // Rows of the U matrix, viewed as [direction, unit, block, input]: the reference scales the
  // x~ block for dropout, the gate blocks by sqrt(1/2) (v adds variance to their inputs) and,
  // with rescale, the projected highway block by s.
  auto w = out->weight.view({2, hidden, blocks, out->weight.size(1)});
  if (options.dropout > 0) w.select(2, 0).mul_(std::sqrt(1.0 - options.dropout));
  w.select(2, 1).mul_(std::sqrt(0.5));
  w.select(2, 2).mul_(std::sqrt(0.5));
  if (blocks == 4 && options.rescale) w.select(2, 3).mul_(scale_x);
  // v: E = 0, Var = 1/2 (uniform(-sqrt 3, sqrt 3) scaled by sqrt(1/2)).
  v = register_parameter("v",
                         torch::empty({2, 2, hidden}).uniform_(-std::sqrt(1.5), std::sqrt(1.5)));
  auto bias = torch::zeros({2, 2, hidden});
  bias.select(1, 1).fill_(options.highway_bias);
  b = register_parameter("b", bias);
}

torch::Tensor SruLayerImpl::project(const torch::Tensor& x, const torch::Tensor& mask) {
  auto B = x.size(0), T = x.size(1);
  torch::Tensor U;
  if (options.attention_dim > 0) {
    auto z = q(x);
    auto kz = key(z), vz = value(z);
    auto scores = torch::matmul(z, kz.transpose(1, 2)) /
                  std::sqrt(static_cast<double>(options.attention_dim));
    scores = scores.masked_fill(mask.unsqueeze(1) == 0, -1e4);
    auto weights = torch::softmax(scores, -1);
    if (options.attention_dropout > 0)
      weights = torch::dropout(weights, options.attention_dropout, is_training());
    auto a = torch::matmul(weights, vz);
    U = o(norm(z + alpha * a));
  } else {
    U = W(x);
  }
  return U.view({B, T, 2, hidden, blocks});
}

torch::Tensor SruLayerImpl::infer(const torch::Tensor& x, const torch::Tensor& mask,
                                  const torch::Tensor& lengths) {
  torch::NoGradGuard g;
  const int64_t B = x.size(0), T = x.size(1), D = hidden, K = blocks;
  auto& weight = options.attention_dim > 0 ? o->weight : W->weight;  // [2 D K, in]
  std::pair<const void*, int64_t> from{weight.data_ptr(), weight._version()};
  if (from != block_major_from_) {
    block_major_ = weight.view({2, D, K, weight.size(1)})
                       .permute({0, 2, 1, 3})
                       .reshape({2 * K * D, weight.size(1)})
                       .contiguous();
    block_major_from_ = from;
  }
  torch::Tensor in;
  if (options.attention_dim > 0) {
    auto z = q(x);
    auto scores = torch::matmul(z, key(z).transpose(1, 2)) /
                  std::sqrt(static_cast<double>(options.attention_dim));
    scores = scores.masked_fill(mask.unsqueeze(1) == 0, -1e4);
    in = norm(z + alpha * torch::matmul(torch::softmax(scores, -1), value(z)));
  } else {
    in = x;
  }
  auto U = torch::matmul(in, block_major_.t()).contiguous();  // [B, T, 2 K D]
  auto xc = x.contiguous();
  auto len = lengths.to(torch::kInt64).contiguous();
  auto v32 = v.contiguous(), b32 = b.contiguous();
  auto out = torch::zeros({B, T, 2 * D}, x.options());
  kernels::SruLayerArgs a;
  a.u = U.data_ptr<float>();
  a.x = K == 3 ? xc.data_ptr<float>() : nullptr;
  a.v = v32.data_ptr<float>();
  a.b = b32.data_ptr<float>();
  a.lengths = len.data_ptr<int64_t>();
  a.batch = B;
  a.time = T;
  a.hidden = D;
  a.blocks = K;
  a.scale_x = static_cast<float>(scale_x);
  a.out = out.data_ptr<float>();
  kernels::sru_layer(a);
  return out;
}

torch::Tensor SruLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask,
                                    const torch::Tensor& lengths) {
  auto B = x.size(0), T = x.size(1);
  return sru_bidirectional(project(x, mask), x, v, b, lengths, scale_x).view({B, T, 2 * hidden});
}

}  // namespace kdx::models
