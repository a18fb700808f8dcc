#include "workers/models/hf_checkpoint.h"

#include <sys/stat.h>

#include <cstring>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/strings.h"
#include "workers/data/vocab.h"
#include "workers/models/safetensors.h"

namespace kdx::models {

HfCheckpoint read_hf_checkpoint(const std::string& dir) {
  HfCheckpoint ck;
  std::string config_path = dir + "/config.json";
  if (!file_exists(config_path))
    throw Error(dir + ": not a Hugging Face checkpoint (no config.json)");
  ck.config = bert_config_from_hf(read_json_file(config_path), config_path);
  ck.vocab_path = dir + "/vocab.txt";
  if (!file_exists(ck.vocab_path)) throw Error(dir + ": no vocab.txt");
  auto vocab = data::load_vocab(ck.vocab_path);
  if (static_cast<int>(vocab.size()) != ck.config.vocab_size)
    throw Error(ck.vocab_path + " has " + std::to_string(vocab.size()) + " tokens but " +
                config_path + " says vocab_size " + std::to_string(ck.config.vocab_size) +
                ": vocabulary and checkpoint do not match");
  std::string st = dir + "/model.safetensors";
  if (!file_exists(st)) {
    if (file_exists(dir + "/pytorch_model.bin"))
      throw Error(
          dir +
          ": only pytorch_model.bin found; convert it once with: tools/hf-bin-to-safetensors " +
          dir);
    throw Error(dir + ": no model.safetensors");
  }
  for (auto& [name, raw] : read_safetensors(st)) {
    if (raw.dtype != "F32" && raw.dtype != "F16" && raw.dtype != "BF16" && raw.dtype != "F64")
      continue;  // position_ids etc.
    auto values = to_float32(raw, st + ": " + name);
    ck.tensors[name] = torch::from_blob(values.data(), raw.shape, torch::kFloat32).clone();
  }
  return ck;
}

bool load_hf_weights(torch::nn::Module& model, const HfCheckpoint& ck, const std::string& where,
                     const std::string& head_prefix) {
  torch::NoGradGuard g;
  std::vector<std::string> missing;
  bool classifier = false;
  for (auto& item : model.named_parameters()) {
    std::string name = item.key();
    std::vector<std::string> candidates = {name};
    if (starts_with(name, "bert.")) candidates.push_back(name.substr(5));
    for (auto c : std::vector<std::string>(candidates)) {
      if (ends_with(c, "LayerNorm.weight"))
        candidates.push_back(c.substr(0, c.size() - 6) + "gamma");
      if (ends_with(c, "LayerNorm.bias")) candidates.push_back(c.substr(0, c.size() - 4) + "beta");
    }
    const torch::Tensor* src = nullptr;
    for (auto& c : candidates)
      if (ck.tensors.count(c)) src = &ck.tensors.at(c);
    bool is_classifier = starts_with(name, head_prefix);
    if (!src) {
      if (!is_classifier) missing.push_back(name);
      continue;
    }
    if (src->sizes() != item.value().sizes()) {
      if (is_classifier) continue;  // a head for other tags: trained from scratch
      throw Error(where + ": tensor " + name + " has shape " + c10::str(src->sizes()) +
                  " but the model expects " + c10::str(item.value().sizes()));
    }
    item.value().copy_(*src);
    classifier = classifier || is_classifier;
  }
  if (!missing.empty())
    throw Error(where + ": checkpoint lacks " + std::to_string(missing.size()) + " tensors, e.g. " +
                missing.front());
  return classifier;
}

void write_weights(torch::nn::Module& module, const std::string& path) {
  std::map<std::string, RawTensor> out;
  auto add = [&](const std::string& name, const torch::Tensor& value) {
    bool integral = value.scalar_type() == torch::kInt64;
    auto t =
        value.detach().to(torch::kCPU).to(integral ? torch::kInt64 : torch::kFloat32).contiguous();
    RawTensor r;
    r.dtype = integral ? "I64" : "F32";
    r.shape = t.sizes().vec();
    r.bytes.assign(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.nbytes()));
    out[name] = std::move(r);
  };
  for (auto& item : module.named_parameters()) add(item.key(), item.value());
  for (auto& item : module.named_buffers()) add(item.key(), item.value());
  write_safetensors(path, out);
}

void save_hf_checkpoint(BertTaggerImpl& tagger, const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  write_weights(tagger, dir + "/model.safetensors");
  auto cfg = bert_config_to_hf(tagger.bert->config);
  cfg["num_labels"] = tagger.columns * tagger.classes;
  write_file_atomic(dir + "/config.json", cfg.dump(2) + "\n");
}

}  // namespace kdx::models
