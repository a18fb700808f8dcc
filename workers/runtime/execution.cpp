#include "workers/runtime/execution.h"

#include <torch/cuda.h>

#include "common/error.h"
#include "workers/runtime/torch_compat.h"
#if defined(KDX_WITH_CUDA)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace kdx::runtime {
namespace {

#if defined(KDX_WITH_CUDA)
bool cuda_supports_bf16(int index) {
  return at::cuda::getDeviceProperties(index)->major >= 8;  // Ampere and later
}
#endif

}  // namespace

const char* amp_name(Amp amp) {
  switch (amp) {
    case Amp::Bf16:
      return "bf16";
    case Amp::Fp16:
      return "fp16";
    default:
      return "none";
  }
}

int cuda_device_count() {
#if defined(KDX_WITH_CUDA)
  return torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
#else
  return 0;
#endif
}

std::string Execution::describe() const {
  std::string s = device.str();
#if defined(KDX_WITH_CUDA)
  if (device.is_cuda())
    s += std::string(" (") + at::cuda::getDeviceProperties(device.index())->name + ")";
#endif
  return s;
}

Execution resolve_execution(const std::string& device, const std::string& amp, int local_rank,
                            const std::string& where) {
  Execution e;
  e.requested_device = device;
  e.requested_amp = amp;
  const int gpus = cuda_device_count();
  if (device == "cuda") {
    if (gpus == 0)
      throw Error(where + ".device: cuda was asked for, but " +
                  std::string(
#if defined(KDX_WITH_CUDA)
                      "this node has no visible CUDA device (CUDA_VISIBLE_DEVICES, the job's GPUs)"
#else
                      "this kdx-worker was built against a LibTorch without CUDA (see the "
                      "README's GPU section: make cuda)"
#endif
                      ));
  } else if (device != "auto" && device != "cpu") {
    throw Error(where + ".device: '" + device + "' is not one of: auto, cpu, cuda");
  }
  if (device == "cuda" || (device == "auto" && gpus > 0))
    e.device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % gpus));
  if (amp == "auto") {
#if defined(KDX_WITH_CUDA)
    if (e.device.is_cuda()) e.amp = cuda_supports_bf16(e.device.index()) ? Amp::Bf16 : Amp::Fp16;
#endif
  } else if (amp == "bf16") {
    e.amp = Amp::Bf16;
  } else if (amp == "fp16") {
    if (!e.device.is_cuda())
      throw Error(where + ".amp: fp16 autocast runs on a GPU only; on a CPU use bf16 or none");
    e.amp = Amp::Fp16;
  } else if (amp != "none") {
    throw Error(where + ".amp: '" + amp + "' is not one of: auto, none, bf16, fp16");
  }
  e.loss_scaling = e.amp == Amp::Fp16;
  return e;
}

void activate(const Execution& exec) {
#if defined(KDX_WITH_CUDA)
  // Before the process group: NCCL binds each communicator to the current device, and
  // without this every rank of a node would use cuda:0.
  if (exec.device.is_cuda()) c10::cuda::set_device(exec.device.index());
#else
  (void)exec;
#endif
}

torch::Tensor to_device(const torch::Tensor& host, const Execution& exec) {
  if (!exec.device.is_cuda()) return host.clone();
  return host.pin_memory().to(exec.device, /*non_blocking=*/true);
}

AutocastGuard::AutocastGuard(const Execution& exec)
    : type_(exec.device.is_cuda() ? c10::DeviceType::CUDA : c10::DeviceType::CPU) {
  if (exec.amp == Amp::None) return;
  active_ = true;
  was_enabled_ = compat::autocast_enabled(type_);
  was_dtype_ = compat::autocast_dtype(type_);
  compat::set_autocast(type_, true, exec.amp == Amp::Bf16 ? at::kBFloat16 : at::kHalf);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // The cast weights are cached for one forward; the outermost guard drops them.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::set_autocast(type_, was_enabled_, was_dtype_);
}

int64_t peak_device_bytes(const Execution& exec) {
#if defined(KDX_WITH_CUDA)
  if (exec.device.is_cuda())
    return c10::cuda::CUDACachingAllocator::getDeviceStats(exec.device.index())
        .allocated_bytes[0]
        .peak;
#else
  (void)exec;
#endif
  return 0;
}

void reset_peak_device_bytes(const Execution& exec) {
#if defined(KDX_WITH_CUDA)
  if (exec.device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(exec.device.index());
#else
  (void)exec;
#endif
}

void synchronize(const Execution& exec) {
  if (exec.device.is_cuda()) torch::cuda::synchronize(exec.device.index());
}

}  // namespace kdx::runtime
