#include "workers/models/sru.h"

#include <ATen/Parallel.h>

#include <cmath>

namespace kdx::models {
namespace {

inline float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

struct Dims {
  int64_t T, B, D;
};

// One (b, d) chain, forward in time order of the direction; writes h and the c history.
void forward_chain(const float* U, const float* xh, float vf, float vr, float bf, float br, int64_t len,
                   bool reverse, const Dims& s, int64_t b, int64_t d, float* h, float* c_all) {
  float c = 0.f;
  for (int64_t step = 0; step < s.T; ++step) {
    int64_t t = reverse ? s.T - 1 - step : step;
    int64_t i = (t * s.B + b) * s.D + d;
    if (t >= len) {
      h[i] = 0.f;
      c_all[i] = 0.f;
      continue;
    }
    const float* u = U + i * 3;
    float f = sigmoid(u[1] + vf * c + bf);
    float r = sigmoid(u[2] + vr * c + br);
    c = f * c + (1.f - f) * u[0];
    c_all[i] = c;
    h[i] = r * c + (1.f - r) * xh[i];
  }
}

class SruFunction : public torch::autograd::Function<SruFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor U, torch::Tensor xh,
                               torch::Tensor v, torch::Tensor b, torch::Tensor lengths, bool reverse) {
    U = U.contiguous();
    xh = xh.contiguous();
    v = v.contiguous();
    b = b.contiguous();
    Dims s{U.size(0), U.size(1), U.size(2)};
    auto h = torch::empty({s.T, s.B, s.D}, U.options());
    auto c_all = torch::empty({s.T, s.B, s.D}, U.options());
    const float *pu = U.data_ptr<float>(), *px = xh.data_ptr<float>(), *pv = v.data_ptr<float>(), *pb = b.data_ptr<float>();
    const int64_t* pl = lengths.data_ptr<int64_t>();
    float *ph = h.data_ptr<float>(), *pc = c_all.data_ptr<float>();
    at::parallel_for(0, s.B * s.D, 64, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        int64_t bi = k / s.D, d = k % s.D;
        forward_chain(pu, px, pv[d], pv[s.D + d], pb[d], pb[s.D + d], pl[bi], reverse, s, bi, d, ph, pc);
      }
    });
    ctx->save_for_backward({U, xh, v, b, lengths, c_all});
    ctx->saved_data["reverse"] = reverse;
    return h;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto U = saved[0], xh = saved[1], v = saved[2], b = saved[3], lengths = saved[4], c_all = saved[5];
    bool reverse = ctx->saved_data["reverse"].toBool();
    auto dh = grads[0].contiguous();
    Dims s{U.size(0), U.size(1), U.size(2)};
    auto dU = torch::zeros_like(U), dxh = torch::zeros_like(xh);
    // Per-chain partial sums of dv and db, reduced after the parallel loop.
    auto dv_part = torch::zeros({s.B, 2, s.D}, U.options()), db_part = torch::zeros({s.B, 2, s.D}, U.options());
    const float *pu = U.data_ptr<float>(), *px = xh.data_ptr<float>(), *pv = v.data_ptr<float>(), *pb = b.data_ptr<float>();
    const float *pc = c_all.data_ptr<float>(), *pdh = dh.data_ptr<float>();
    const int64_t* pl = lengths.data_ptr<int64_t>();
    float *pdu = dU.data_ptr<float>(), *pdx = dxh.data_ptr<float>();
    float *pdv = dv_part.data_ptr<float>(), *pdb = db_part.data_ptr<float>();
    at::parallel_for(0, s.B * s.D, 64, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        int64_t bi = k / s.D, d = k % s.D, len = pl[bi];
        float vf = pv[d], vr = pv[s.D + d], bf = pb[d], br = pb[s.D + d];
        float dc_next = 0.f, dvf = 0.f, dvr = 0.f, dbf = 0.f, dbr = 0.f;
        // Walk the chain backwards: the last processed step first.
        for (int64_t step = s.T - 1; step >= 0; --step) {
          int64_t t = reverse ? s.T - 1 - step : step;
          if (t >= len) continue;
          int64_t i = (t * s.B + bi) * s.D + d;
          int64_t prev_t = reverse ? t + 1 : t - 1;
          bool has_prev = reverse ? (prev_t < len) : (prev_t >= 0);
          float c_prev = has_prev ? pc[(prev_t * s.B + bi) * s.D + d] : 0.f;
          const float* u = pu + i * 3;
          float f = sigmoid(u[1] + vf * c_prev + bf);
          float r = sigmoid(u[2] + vr * c_prev + br);
          float c = pc[i];
          float g = pdh[i];
          float dc = dc_next + g * r;
          float dr_pre = g * (c - px[i]) * r * (1.f - r);
          pdx[i] = g * (1.f - r);
          float df_pre = dc * (c_prev - u[0]) * f * (1.f - f);
          float* du = pdu + i * 3;
          du[0] = dc * (1.f - f);
          du[1] = df_pre;
          du[2] = dr_pre;
          dc_next = dc * f + df_pre * vf + dr_pre * vr;
          dvf += df_pre * c_prev;
          dvr += dr_pre * c_prev;
          dbf += df_pre;
          dbr += dr_pre;
        }
        pdv[(bi * 2) * s.D + d] = dvf;
        pdv[(bi * 2 + 1) * s.D + d] = dvr;
        pdb[(bi * 2) * s.D + d] = dbf;
        pdb[(bi * 2 + 1) * s.D + d] = dbr;
      }
    });
    return {dU, dxh, dv_part.sum(0), db_part.sum(0), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor sru_recurrence(const torch::Tensor& U, const torch::Tensor& xh, const torch::Tensor& v,
                             const torch::Tensor& b, const torch::Tensor& lengths, bool reverse) {
  if (!U.device().is_cpu() || U.scalar_type() != torch::kFloat32) return sru_recurrence_naive(U, xh, v, b, lengths, reverse);
  return SruFunction::apply(U, xh, v, b, lengths.to(torch::kCPU).to(torch::kInt64).contiguous(), reverse);
}

torch::Tensor sru_recurrence_naive(const torch::Tensor& U, const torch::Tensor& xh, const torch::Tensor& v,
                                   const torch::Tensor& b, const torch::Tensor& lengths, bool reverse) {
  auto T = U.size(0), B = U.size(1), D = U.size(2);
  // valid[t, b] = t < length[b]
  auto valid = (torch::arange(T, lengths.options()).unsqueeze(1) < lengths.to(U.device()).unsqueeze(0))
                   .to(U.dtype()).unsqueeze(2);  // [T, B, 1]
  auto us = U.unbind(0);  // unbind once: per-step indexing makes backward crawl
  auto xs = xh.unbind(0);
  auto ms = valid.unbind(0);
  std::vector<torch::Tensor> hs(static_cast<size_t>(T));
  auto c = torch::zeros({B, D}, U.options());
  for (int64_t step = 0; step < T; ++step) {
    int64_t t = reverse ? T - 1 - step : step;
    auto& u = us[static_cast<size_t>(t)];
    auto m = ms[static_cast<size_t>(t)];
    auto f = torch::sigmoid(u.select(2, 1) + v[0] * c + b[0]);
    auto r = torch::sigmoid(u.select(2, 2) + v[1] * c + b[1]);
    auto c_new = f * c + (1 - f) * u.select(2, 0);
    auto h = r * c_new + (1 - r) * xs[static_cast<size_t>(t)];
    c = m * c_new + (1 - m) * c;
    hs[static_cast<size_t>(t)] = h * m;
  }
  return torch::stack(hs, 0);
}

SruLayerImpl::SruLayerImpl(int in, int hid, int attn) : input(in), hidden(hid), attention_dim(attn) {
  project_highway = input != hidden;
  const int kk = project_highway ? 4 : 3;  // x~, f', r' (+ highway projection)
  auto linear = [](int a, int b) { return torch::nn::Linear(torch::nn::LinearOptions(a, b).bias(false)); };
  if (attention_dim > 0) {
    q = register_module("q", linear(input, attention_dim));
    k = register_module("k", linear(attention_dim, attention_dim));
    vproj = register_module("v_proj", linear(attention_dim, attention_dim));
    o = register_module("o", linear(attention_dim, 2 * hidden * kk));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({attention_dim})));
    alpha = register_parameter("alpha", torch::ones({1}));
  } else {
    W = register_module("W", linear(input, 2 * hidden * kk));
  }
  v = register_parameter("v", torch::zeros({2, 2, hidden}));
  b = register_parameter("b", torch::zeros({2, 2, hidden}));
}

torch::Tensor SruLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, const torch::Tensor& lengths) {
  auto B = x.size(0), T = x.size(1);
  int kk = project_highway ? 4 : 3;
  torch::Tensor U;
  if (attention_dim > 0) {
    auto qx = q(x);
    auto kx = k(qx), vx = vproj(qx);
    auto scores = torch::matmul(qx, kx.transpose(1, 2)) / std::sqrt(static_cast<double>(attention_dim));
    scores = scores.masked_fill(mask.unsqueeze(1) == 0, -1e4);
    auto a = torch::matmul(torch::softmax(scores, -1), vx);
    U = o(norm(qx + alpha * a));
  } else {
    U = W(x);
  }
  U = U.view({B, T, 2, hidden, kk});
  std::vector<torch::Tensor> outs;
  for (int dir = 0; dir < 2; ++dir) {
    auto u = U.select(2, dir).transpose(0, 1);  // [T, B, hidden, kk]
    auto xh = project_highway ? u.select(3, 3) : x.transpose(0, 1);
    auto u3 = project_highway ? u.narrow(3, 0, 3) : u;
    outs.push_back(sru_recurrence(u3.contiguous(), xh.contiguous(), v[dir], b[dir], lengths, dir == 1));
  }
  return torch::cat(outs, 2).transpose(0, 1);  // [B, T, 2 * hidden]
}

}  // namespace kdx::models
