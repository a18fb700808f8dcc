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

namespace {

// Params in order, cut into runs of about `bucket_bytes` (0: one parameter per run).
template <class F>
void for_each_bucket(const std::vector<torch::Tensor>& params, size_t bucket_bytes, F f) {
  std::vector<torch::Tensor> bucket;
  size_t bytes = 0;
  for (auto& p : params) {
    bucket.push_back(p);
    bytes += static_cast<size_t>(p.numel()) * p.element_size();
    if (bytes >= bucket_bytes) {
      f(bucket);
      bucket.clear();
      bytes = 0;
    }
  }
  if (!bucket.empty()) f(bucket);
}

// One flat tensor of the bucket's values on the reducer's device; and back.
torch::Tensor flatten(const std::vector<torch::Tensor>& parts, const torch::Device& device) {
  std::vector<torch::Tensor> flat;
  for (auto& t : parts) flat.push_back(t.reshape(-1));
  return torch::cat(flat).to(device);
}

void unflatten(const torch::Tensor& flat, const std::vector<torch::Tensor>& into) {
  int64_t off = 0;
  for (auto& t : into) {
    auto n = t.numel();
    const_cast<torch::Tensor&>(t).copy_(flat.narrow(0, off, n).view_as(t));
    off += n;
  }
}

}  // namespace

void sync_gradients(Reducer& reducer, const std::vector<torch::Tensor>& params,
                    size_t bucket_bytes) {
  if (reducer.world == 1) return;
  torch::NoGradGuard g;
  for_each_bucket(params, bucket_bytes, [&](const std::vector<torch::Tensor>& bucket) {
    std::vector<torch::Tensor> grads;
    for (auto p : bucket) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad());
    }
    std::vector<torch::Tensor> flat = {flatten(grads, reducer.device)};
    reducer.allreduce_sum(flat);
    unflatten(flat[0], grads);
  });
}

void sync_parameters(Reducer& reducer, const std::vector<torch::Tensor>& params,
                     size_t bucket_bytes) {
  if (reducer.world == 1) return;
  torch::NoGradGuard g;
  for_each_bucket(params, bucket_bytes, [&](const std::vector<torch::Tensor>& bucket) {
    std::vector<torch::Tensor> data;
    for (auto& p : bucket) data.push_back(p.data());
    std::vector<torch::Tensor> flat = {flatten(data, reducer.device)};
    reducer.broadcast(flat, 0);
    unflatten(flat[0], data);
  });
}

std::vector<double> allreduce_scalars(Reducer& reducer, const std::vector<double>& values) {
  if (reducer.world == 1) return values;
  std::vector<torch::Tensor> t = {torch::tensor(values, torch::kFloat64).to(reducer.device)};
  reducer.allreduce_sum(t);
  auto host = t[0].to(torch::kCPU).contiguous();
  auto acc = host.accessor<double, 1>();
  std::vector<double> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = acc[static_cast<int64_t>(i)];
  return out;
}

}  // namespace kdx::distributed
