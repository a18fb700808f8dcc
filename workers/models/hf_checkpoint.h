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

// Copies encoder weights (and the classifier when its shape fits) into `tagger`; accepts
// names with or without the "bert." prefix and old gamma/beta LayerNorm names. Returns
// whether the classifier was loaded. Throws kdx::Error listing missing or mis-shaped tensors.
bool load_hf_weights(BertTaggerImpl& tagger, const HfCheckpoint& ckpt, const std::string& where);

// Writes config.json and model.safetensors (float32, BertForTokenClassification names).
void save_hf_checkpoint(BertTaggerImpl& tagger, const std::string& dir);

}  // namespace kdx::models
