#include "workers/distributed/reducer.h"

namespace kdx::distributed {
namespace {

class SingleProcess : public Reducer {
 public:
  void allreduce_sum(std::vector<torch::Tensor>&) override {}
  void broadcast(std::vector<torch::Tensor>&, int) override {}
};

}  // namespace

std::unique_ptr<Reducer> make_single_process() {
  return std::make_unique<SingleProcess>();
}

void sync_gradients(Reducer& reducer, const std::vector<torch::Tensor>& params,
                    size_t bucket_bytes) {
  if (reducer.world == 1) return;
  torch::NoGradGuard g;
  std::vector<torch::Tensor> bucket;
  size_t bytes = 0;
  auto flush = [&] {
    if (bucket.empty()) return;
    std::vector<torch::Tensor> flat_parts;
    for (auto& p : bucket) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      flat_parts.push_back(p.grad().reshape(-1));
    }
    std::vector<torch::Tensor> flat = {torch::cat(flat_parts)};
    reducer.allreduce_sum(flat);
    int64_t off = 0;
    for (auto& p : bucket) {
      auto n = p.numel();
      p.mutable_grad().copy_(flat[0].narrow(0, off, n).view_as(p));
      off += n;
    }
    bucket.clear();
    bytes = 0;
  };
  for (auto& p : params) {
    bucket.push_back(p);
    bytes += static_cast<size_t>(p.numel()) * p.element_size();
    if (bytes >= bucket_bytes) flush();  // bucket_bytes 0: every parameter alone
  }
  flush();
}

void sync_parameters(Reducer& reducer, const std::vector<torch::Tensor>& params) {
  if (reducer.world == 1) return;
  torch::NoGradGuard g;
  std::vector<torch::Tensor> data;
  for (auto& p : params) data.push_back(p.data());
  reducer.broadcast(data, 0);
}

std::vector<double> allreduce_scalars(Reducer& reducer, const std::vector<double>& values) {
  if (reducer.world == 1) return values;
  std::vector<torch::Tensor> t = {torch::tensor(values, torch::kFloat64)};
  reducer.allreduce_sum(t);
  auto acc = t[0].accessor<double, 1>();
  std::vector<double> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = acc[static_cast<int64_t>(i)];
  return out;
}

}  // namespace kdx::distributed
