// The execution context: where a run's tensors live and in which precision it computes.
// One value, resolved once from run.json's `device` and `amp` and the rank's local index, then
// handed to the trainer, the tasks and every stage; nothing else asks which device it is on.
#pragma once

#include <torch/torch.h>

#include <string>

namespace kdx::runtime {

enum class Amp { None, Bf16, Fp16 };

struct Execution {
  torch::Device device = torch::kCPU;
  Amp amp = Amp::None;
  // fp16 needs a loss scaler; set with Amp::Fp16, and on its own by tests that drive the
  // scaler on a CPU (where fp16 autocast does not exist).
  bool loss_scaling = false;
  std::string requested_device = "auto", requested_amp = "auto";

  bool is_cuda() const { return device.is_cuda(); }
  // "cpu" or "cuda:1 (NVIDIA H200)": for logs and result.json.
  std::string describe() const;
};

const char* amp_name(Amp amp);

// `device`: auto | cpu | cuda; `amp`: auto | none | bf16 | fp16. auto = CUDA when this build
// and this node have a device, and then bf16 where the device supports it; on a CPU, no
// mixed precision unless asked. A rank's GPU is cuda:(local_rank mod visible devices), so one
// GPU per task (Slurm's --gpus-per-task) and all GPUs visible (torchrun) both work. Throws
// kdx::Error naming `where` (e.g. "run.json: params.device") for what cannot run here.
Execution resolve_execution(const std::string& device, const std::string& amp, int local_rank,
                            const std::string& where);

// Makes the execution's device the current one of this process (before any process group).
void activate(const Execution& exec);

// How many CUDA devices this process sees (0 in a CPU build or on a CPU node).
int cuda_device_count();

// A host tensor on the run's device: an owned copy on a CPU; on a GPU a non-blocking copy
// from pinned memory, so the copy overlaps the host's work on the next batch.
torch::Tensor to_device(const torch::Tensor& host, const Execution& exec);

// Autocast around a forward pass when the execution asks for it; restores the previous state.
class AutocastGuard {
 public:
  explicit AutocastGuard(const Execution& exec);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType type_;
  bool active_ = false, was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

// Peak memory the caching allocator has handed out on the execution's GPU since the last
// reset, in bytes (0 on a CPU), and the reset; waiting for the device's queued work.
int64_t peak_device_bytes(const Execution& exec);
void reset_peak_device_bytes(const Execution& exec);
void synchronize(const Execution& exec);

}  // namespace kdx::runtime
