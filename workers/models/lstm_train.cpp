#include "workers/models/lstm_train.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "workers/models/recurrent_kernels.h"
#include "workers/runtime/torch_compat.h"

namespace kdx::models {
namespace {

class LstmFunction : public torch::autograd::Function<LstmFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x,
                               torch::Tensor w_ih, torch::Tensor w_hh, torch::Tensor b_ih,
                               torch::Tensor b_hh) {
    x = x.contiguous();
    w_hh = w_hh.contiguous();
    const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = w_hh.size(1), N = 4 * H;
    // Every step's gates start as its input projection; step t adds h_{t-1} W_hh^T in place.
    auto gates = torch::addmm(b_ih + b_hh, x.view({B * T, I}), w_ih.t()).view({B, T, N});
    auto c = torch::empty({B, T, H}, x.options()), y = torch::empty({B, T, H}, x.options());
    const auto w_t = w_hh.t();
    float *pg = gates.data_ptr<float>(), *pc = c.data_ptr<float>(), *py = y.data_ptr<float>();
    for (int64_t t = 0; t < T; ++t) {
      if (t > 0) gates.select(1, t).addmm_(y.select(1, t - 1), w_t);
      kernels::LstmCellForward a;
      a.g = pg + t * N;
      a.g_stride = T * N;
      a.c_prev = t > 0 ? pc + (t - 1) * H : nullptr;
      a.c = pc + t * H;
      a.c_stride = T * H;
      a.h = py + t * H;
      a.h_stride = T * H;
      a.rows = B;
      a.hidden = H;
      kernels::lstm_cell_forward(a);
    }
    ctx->save_for_backward({x, w_ih, w_hh, gates, c, y});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto s = ctx->get_saved_variables();
    auto x = s[0], w_ih = s[1], w_hh = s[2], gates = s[3], c = s[4], y = s[5];
    const int64_t B = x.size(0), T = x.size(1), I = x.size(2), H = w_hh.size(1), N = 4 * H;
    auto dy = grads[0].defined() ? grads[0].contiguous() : torch::zeros_like(y);
    auto dg = torch::empty({B, T, N}, x.options());
    auto dh = torch::zeros({B, H}, x.options()), dc = torch::zeros({B, H}, x.options());
    const float *pg = gates.data_ptr<float>(), *pc = c.data_ptr<float>(),
                *pdy = dy.data_ptr<float>();
    float *pdg = dg.data_ptr<float>(), *pdh = dh.data_ptr<float>(), *pdc = dc.data_ptr<float>();
    for (int64_t t = T - 1; t >= 0; --t) {
      kernels::LstmCellBackward a;
      a.g = pg + t * N;
      a.g_stride = T * N;
      a.c_prev = t > 0 ? pc + (t - 1) * H : nullptr;
      a.c = pc + t * H;
      a.c_stride = T * H;
      a.dy = pdy + t * H;
      a.dy_stride = T * H;
      a.dh = t + 1 < T ? pdh : nullptr;
      a.dc = pdc;
      a.dg = pdg + t * N;
      a.dg_stride = T * N;
      a.rows = B;
      a.hidden = H;
      kernels::lstm_cell_backward(a);
      if (t > 0) at::mm_out(dh, dg.select(1, t), w_hh);  // to h_{t-1}
    }
    auto dg2 = dg.view({B * T, N});
    auto h_prev = torch::zeros({B, T, H}, x.options());  // step t's h_{t-1}: 0 at t = 0
    if (T > 1) h_prev.narrow(1, 1, T - 1).copy_(y.narrow(1, 0, T - 1));
    auto db = dg2.sum(0);
    auto dw_hh = dg2.t().mm(h_prev.view({B * T, H}));
    auto dw_ih = dg2.t().mm(x.view({B * T, I}));
    auto dx = dg2.mm(w_ih).view({B, T, I});
    // Two biases, two tensors: a gradient shared by two parameters would be scaled twice by an
    // in-place clip of each parameter's gradient.
    return {dx, dw_ih, dw_hh, db, db.clone()};
  }
};

bool aten_asked() {
  static const bool aten = [] {
    const char* v = std::getenv("KDX_LSTM_TRAIN");
    if (!v || !*v || std::strcmp(v, "kdx") == 0) return false;
    if (std::strcmp(v, "aten") == 0) return true;
    throw std::invalid_argument(std::string("KDX_LSTM_TRAIN: '") + v + "' is not kdx or aten");
  }();
  return aten;
}

}  // namespace

bool lstm_train_serves(const torch::Tensor& x, const torch::Tensor& w) {
  return x.device().is_cpu() && x.scalar_type() == torch::kFloat32 &&
         w.scalar_type() == torch::kFloat32 && !aten_asked() &&
         !compat::autocast_enabled(c10::DeviceType::CPU);  // bf16 autocast: ATen's LSTM
}

torch::Tensor lstm_train(const torch::Tensor& x, const torch::Tensor& w_ih,
                         const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                         const torch::Tensor& b_hh) {
  return LstmFunction::apply(x, w_ih, w_hh, b_ih, b_hh);
}

}  // namespace kdx::models
