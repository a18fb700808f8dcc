// safetensors files (Hugging Face's weight format): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}}, then raw little-endian tensors.
// Parsing needs no torch; the bytes are handed to torch by hf_checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kdx::models {

struct RawTensor {
  std::string dtype;  // F32, F16, BF16, F64, I64, I32, ...
  std::vector<int64_t> shape;
  std::string bytes;
};

// Throws kdx::Error naming the file for a truncated or malformed file.
std::map<std::string, RawTensor> read_safetensors(const std::string& path);
void write_safetensors(const std::string& path,
                       const std::map<std::string, RawTensor>& tensors);  // atomic

// Element values as float32 (F32, F16, BF16, F64); throws for other dtypes.
std::vector<float> to_float32(const RawTensor& t, const std::string& name);

}  // namespace kdx::models
