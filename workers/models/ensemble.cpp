#include "workers/models/ensemble.h"

#include "common/error.h"

namespace kdx::models {

Combine combine_of(const std::string& name, const std::string& where) {
  if (name == "mean_logits") return Combine::MeanLogits;
  if (name == "mean_probs") return Combine::MeanProbs;
  throw Error(where + ": '" + name + "' is not mean_logits or mean_probs");
}

const char* combine_name(Combine c) {
  return c == Combine::MeanLogits ? "mean_logits" : "mean_probs";
}

torch::Tensor combine_outputs(const std::vector<torch::Tensor>& outputs, Combine rule, int columns,
                              int classes) {
  if (outputs.empty()) throw Error("combine_outputs: no outputs");
  if (outputs.size() == 1) return outputs.front();
  torch::Tensor sum;
  for (auto& out : outputs) {
    // Combined in fp32, whatever the autocast dtype of each member was.
    torch::Tensor o = out.to(torch::kFloat32);
    if (rule == Combine::MeanProbs) {
      auto shape = o.sizes().vec();
      o = torch::softmax(o.view({shape[0], shape[1], columns, classes}), -1).view(shape);
    }
    sum = sum.defined() ? sum + o : o;
  }
  sum = sum / static_cast<double>(outputs.size());
  // Probabilities back to logits: the floor keeps log() finite for a class every member rules
  // out (fp16 softmax underflows to 0).
  if (rule == Combine::MeanProbs) sum = sum.clamp_min(1e-8).log();
  return sum;
}

EnsembleTaggerImpl::EnsembleTaggerImpl(std::vector<Tagger> members, Combine rule)
    : members_(std::move(members)), rule_(rule) {
  if (members_.empty()) throw Error("a teacher ensemble needs members");
  columns = members_.front()->columns;
  classes = members_.front()->classes;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (members_[i]->columns != columns || members_[i]->classes != classes ||
        members_[i]->word_rows() != members_.front()->word_rows())
      throw Error("ensemble member " + std::to_string(i) +
                  ": another output layout or word table than the first member's");
    register_module("member" + std::to_string(i), members_[i]);
  }
}

torch::Tensor EnsembleTaggerImpl::forward(const torch::Tensor& ids, const torch::Tensor& mask,
                                          const torch::Tensor& words) {
  std::vector<torch::Tensor> outs;
  for (auto& m : members_) outs.push_back(m->forward(ids, mask, words));
  return combine_outputs(outs, rule_, columns, classes);
}

torch::Tensor EnsembleTaggerImpl::infer(const torch::Tensor& ids, const torch::Tensor& mask,
                                        const torch::Tensor& words) {
  std::vector<torch::Tensor> outs;
  for (auto& m : members_) outs.push_back(m->infer(ids, mask, words));
  return combine_outputs(outs, rule_, columns, classes);
}

nlohmann::json EnsembleTaggerImpl::describe() const {
  nlohmann::json members = nlohmann::json::array();
  for (auto& m : members_) members.push_back(m->describe());
  return {{"arch", "ensemble"}, {"combine", combine_name(rule_)}, {"members", members}};
}

}  // namespace kdx::models
