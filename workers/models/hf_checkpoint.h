// Hugging Face BERT checkpoint directories: config.json + vocab.txt + model.safetensors.
// Teachers are loaded from them and saved as them, so a kdx teacher is also a valid
// transformers checkpoint. pytorch_model.bin is converted by tools/hf-bin-to-safetensors.
#pragma once

#include <map>
#include <string>

#include "workers/models/bert.h"

namespace kdx::models {

struct HfCheckpoint {
  BertConfig config;
  std::map<std::string, torch::Tensor> tensors;  // float32, names as in the file
  std::string vocab_path;
};

// Throws kdx::Error naming the directory and the missing or corrupt file.
HfCheckpoint read_hf_checkpoint(const std::string& dir);

// Copies encoder weights into `model` by name (a BertTagger, or a BertMlm), and the head
// (names starting with `head_prefix`) when the checkpoint has it in the same shape, else the
// head keeps its fresh weights; accepts names with or without the "bert." prefix and old
// gamma/beta LayerNorm names. Returns whether the head was loaded. Throws kdx::Error listing
// missing or mis-shaped encoder tensors.
bool load_hf_weights(torch::nn::Module& model, const HfCheckpoint& ckpt, const std::string& where,
                     const std::string& head_prefix = "classifier.");

// A module's parameters (float32) and buffers (float32, or int64 such as a vocabulary map)
// as safetensors, by their module names; atomic.
void write_weights(torch::nn::Module& module, const std::string& path);

// Writes config.json and model.safetensors (float32, BertForTokenClassification names).
void save_hf_checkpoint(BertTaggerImpl& tagger, const std::string& dir);

}  // namespace kdx::models
