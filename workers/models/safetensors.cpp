#include "workers/models/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "workers/training/artefact_file.h"

namespace kdx::models {

std::map<std::string, RawTensor> read_safetensors(const std::string& path) {
  std::string data = read_input(path, InputKind::Weights);
  if (data.size() < 8)
    throw Error(path + ": not a safetensors file (shorter than its 8-byte header length)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(data[static_cast<size_t>(i)]);
  if (n > data.size() - 8)
    throw Error(path + ": not a safetensors file (header length " + std::to_string(n) +
                " exceeds the file)");
  auto header = parse_json(data.substr(8, n));
  if (!header.is_object()) throw Error(path + ": safetensors header is not a JSON object");
  std::map<std::string, RawTensor> out;
  size_t base = 8 + n;
  for (auto& item : header.items()) {
    const std::string& name = item.key();
    const nlohmann::json& info = item.value();
    if (name == "__metadata__") continue;
    // Every field checked for its JSON type: a header is outside input (found by fuzzing).
    auto bad = [&](const std::string& what) {
      return Error(path + ": tensor " + name + ": " + what);
    };
    if (!info.is_object()) throw bad("entry is not a JSON object");
    RawTensor t;
    if (!info.contains("dtype") || !info["dtype"].is_string()) throw bad("dtype: not a string");
    t.dtype = info["dtype"].get<std::string>();
    if (!info.contains("shape") || !info["shape"].is_array()) throw bad("shape: not a list");
    for (auto& d : info["shape"]) {
      if (!d.is_number_unsigned()) throw bad("shape: not a list of sizes");
      if (d.get<uint64_t>() > (uint64_t{1} << 40)) throw bad("shape: size out of range");
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    const nlohmann::json off = info.contains("data_offsets") ? info["data_offsets"] : nullptr;
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned())
      throw bad("data_offsets: not two offsets");
    uint64_t lo = off[0].get<uint64_t>(), hi = off[1].get<uint64_t>();
    if (lo > hi || hi > data.size() - base)
      throw Error(path + ": tensor " + name + " has bad data_offsets (file truncated?)");
    t.bytes = data.substr(base + lo, hi - lo);
    out[name] = std::move(t);
  }
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, RawTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t off = 0;
  for (auto& [name, t] : tensors) {
    header[name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {off, off + t.bytes.size()}}};
    off += t.bytes.size();
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h += ' ';  // aligned, as the reference writer does
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  // Through the worker's artefact writer: a full disk leaves the previous file whole and says
  // "cannot write <path>: No space left on device".
  training::ArtefactFile f(path);
  f.write(out + h);
  for (auto& [name, t] : tensors) f.write(t.bytes);
  f.commit();
}

namespace {

float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

std::vector<float> to_float32(const RawTensor& t, const std::string& name) {
  size_t count = 1;
  for (auto d : t.shape) count *= static_cast<size_t>(d);
  size_t width = t.dtype == "F32"                          ? 4
                 : t.dtype == "F64"                        ? 8
                 : (t.dtype == "F16" || t.dtype == "BF16") ? 2
                                                           : 0;
  if (width == 0)
    throw Error("tensor " + name + ": dtype " + t.dtype + " is not a floating-point type");
  if (t.bytes.size() != count * width)
    throw Error("tensor " + name + ": " + std::to_string(t.bytes.size()) + " bytes for " +
                std::to_string(count) + " " + t.dtype + " values");
  std::vector<float> out(count);
  const char* p = t.bytes.data();
  for (size_t i = 0; i < count; ++i) {
    if (t.dtype == "F32") {
      std::memcpy(&out[i], p + 4 * i, 4);
    } else if (t.dtype == "F64") {
      double d;
      std::memcpy(&d, p + 8 * i, 8);
      out[i] = static_cast<float>(d);
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      if (t.dtype == "F16") {
        out[i] = half_to_float(h);
      } else {
        uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(&out[i], &bits, 4);
      }
    }
  }
  return out;
}

}  // namespace kdx::models
