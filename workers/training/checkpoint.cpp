#include "workers/training/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/strings.h"
#include "workers/models/hf_checkpoint.h"
#include "workers/models/safetensors.h"
#include "workers/training/artefact_file.h"

namespace kdx::training {
namespace {

// The model and optimizer files that dir/state.json names (none when it is absent or
// unreadable).
std::set<std::string> committed_files(const std::string& dir) {
  std::set<std::string> out;
  if (!is_regular_file(dir + "/state.json")) return out;
  try {
    auto j = parse_json(read_input(dir + "/state.json", InputKind::Record));
    for (auto k : {"model_file", "optimizer_file"})
      if (j.is_object() && j.contains(k) && j[k].is_string()) out.insert(j[k].get<std::string>());
  } catch (const Error&) {
  }
  return out;
}

}  // namespace

namespace {

// Parameters, then buffers (the student's vocabulary map is an int64 buffer).
std::vector<std::pair<std::string, torch::Tensor>> weight_tensors(torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : module.named_parameters()) out.emplace_back(item.key(), item.value());
  for (auto& item : module.named_buffers()) out.emplace_back(item.key(), item.value());
  return out;
}

}  // namespace

void save_weights(torch::nn::Module& module, const std::string& path) {
  models::write_weights(module, path);
}

void load_weights(torch::nn::Module& module, const std::string& path) {
  if (!file_exists(path)) throw Error(path + ": no such weights file");
  auto raw = models::read_safetensors(path);
  torch::NoGradGuard g;
  for (auto& [name, value] : weight_tensors(module)) {
    auto it = raw.find(name);
    if (it == raw.end()) throw Error(path + ": missing tensor " + name);
    auto& r = it->second;
    torch::Tensor src;
    std::vector<float> values;
    if (value.scalar_type() == torch::kInt64) {
      int64_t n = 1;
      for (auto d : r.shape) n *= d;
      if (r.dtype != "I64" || r.bytes.size() != static_cast<size_t>(n) * 8)
        throw Error(path + ": tensor " + name + " must be I64 with " + std::to_string(n) +
                    " elements");
      src = torch::from_blob(const_cast<char*>(r.bytes.data()), r.shape, torch::kInt64);
    } else {
      values = models::to_float32(r, path + ": " + name);
      src = torch::from_blob(values.data(), r.shape, torch::kFloat32);
    }
    if (src.sizes() != value.sizes())
      throw Error(path + ": tensor " + name + " has shape " + c10::str(src.sizes()) +
                  ", the model expects " + c10::str(value.sizes()));
    value.copy_(src);
  }
}

void save_checkpoint(const std::string& dir, torch::nn::Module& module,
                     torch::optim::Optimizer& optimizer, const TrainingState& state) {
  ::mkdir(dir.c_str(), 0755);
  std::string tag = std::to_string(state.step);
  std::string model = "model-" + tag + ".safetensors", optim = "optimizer-" + tag + ".pt";
  // The files the committed checkpoint (state.json) names: never removed here.
  std::set<std::string> kept = committed_files(dir);
  try {
    save_weights(module, dir + "/" + model);
    // torch::save into our own writer, never into a file of its own: LibTorch's stream
    // writer finishes its archive in its destructor, and a failed file write (a full disk)
    // made that destructor throw ("unexpected pos") and std::terminate the worker.
    write_artefact_streamed(dir + "/" + optim,
                            [&](const auto& sink) { torch::save(optimizer, sink); });
    auto j = state.to_json();
    j["model_file"] = model;
    j["optimizer_file"] = optim;
    // Renamed into place last: state.json names the previous checkpoint's files until the new
    // ones are whole.
    write_artefact(dir + "/state.json", j.dump(2) + "\n");
  } catch (...) {
    // The previous checkpoint stays as it was; what this attempt wrote of its own goes, so a
    // full disk is not made fuller.
    for (auto& n : {model, optim})
      if (!kept.count(n)) ::unlink((dir + "/" + n).c_str());
    throw;
  }
  // Older checkpoints are removed only once the new one is committed.
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if ((starts_with(n, "model-") || starts_with(n, "optimizer-")) && n != model && n != optim)
        ::unlink((dir + "/" + n).c_str());
    }
    ::closedir(d);
  }
}

std::optional<TrainingState> load_checkpoint(const std::string& dir, torch::nn::Module& module,
                                             torch::optim::Optimizer& optimizer,
                                             torch::Device device) {
  std::string state_path = dir + "/state.json";
  if (!file_exists(state_path)) return std::nullopt;
  std::string why;
  auto j = parse_json(read_input(state_path, InputKind::Record), &why);
  if (j.is_discarded()) throw Error(state_path + ": corrupt checkpoint state (" + why + ")");
  if (!j.is_object()) throw Error(state_path + ": corrupt checkpoint state (not a JSON object)");
  auto state = TrainingState::from_json(j, state_path);
  // File names only (written by save_checkpoint): never a path out of the directory.
  auto file_field = [&](const char* k) {
    if (!j.contains(k) || !j[k].is_string() || j[k].get<std::string>().empty() ||
        j[k].get<std::string>().find('/') != std::string::npos || j[k].get<std::string>()[0] == '.')
      throw Error(state_path + ": field \"" + std::string(k) + "\" must be a file name");
    return j[k].get<std::string>();
  };
  load_weights(module, dir + "/" + file_field("model_file"));
  std::string optim = dir + "/" + file_field("optimizer_file");
  if (!file_exists(optim)) throw Error(optim + ": checkpoint optimizer state missing");
  torch::load(optimizer, optim, device);
  return state;
}

}  // namespace kdx::training
