#include "workers/distributed/process_group.h"

#include <chrono>
#include <cstdlib>
#include <thread>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "common/error.h"
#include "workers/runtime/torch_compat.h"

namespace kdx::distributed {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int env_int(const char* name, int fallback) {
  const char* v = env(name);
  return v ? std::atoi(v) : fallback;
}

// c10d process groups behind the Reducer interface. Gloo and NCCL share it: the
// collective calls are the same, only the group (and the device of the tensors) differs.
class C10dReducer : public Reducer {
 public:
  explicit C10dReducer(c10::intrusive_ptr<compat::C10dGroup> pg) : pg_(std::move(pg)) {}
  ~C10dReducer() override {
#if KDX_TORCH_AT_LEAST(2, 4)
    // NCCL wants its communicators closed before the group goes (else a warning at exit).
    try {
      pg_->shutdown();
    } catch (const std::exception&) {
    }
#endif
  }
  void allreduce_sum(std::vector<torch::Tensor>& tensors) override {
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    run([&] { pg_->allreduce(tensors, o)->wait(); }, "all-reduce");
  }
  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    for (auto& t : tensors) {
      std::vector<torch::Tensor> one = {t};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      run([&] { pg_->broadcast(one, o)->wait(); }, "broadcast");
    }
  }

 private:
  template <class F>
  void run(F f, const char* what) {
    try {
      f();
    } catch (const std::exception& e) {
      // Gloo: a peer that died shows up as a closed connection or a timeout. NCCL: its own
      // error (a failed rank, a watchdog timeout, a misconfigured transport): say which.
      std::string hint = backend == "nccl" ? "NCCL error" : "another rank probably died";
      throw Error(backend + " " + what + " failed on rank " + std::to_string(rank) + " of " +
                  std::to_string(world) + " (" + hint + "): " + e.what());
    }
  }
  c10::intrusive_ptr<compat::C10dGroup> pg_;
};
}  // namespace

std::string first_host(const std::string& nodelist) {
  // Up to the first comma outside brackets.
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) break;
    first += c;
  }
  auto open = first.find('[');
  if (open == std::string::npos) return first;
  std::string prefix = first.substr(0, open), range = first.substr(open + 1);
  range = range.substr(0, range.find_first_of(",]"));
  return prefix + range.substr(0, range.find('-'));
}

RankInfo rank_info_from_env() {
  RankInfo r;
  if (env("WORLD_SIZE") && env("RANK")) {
    r.source = "torchrun";
    r.rank = env_int("RANK", 0);
    r.world = env_int("WORLD_SIZE", 1);
    r.local_rank = env_int("LOCAL_RANK", 0);
    if (env("MASTER_ADDR")) r.master_addr = env("MASTER_ADDR");
    r.master_port = env_int("MASTER_PORT", 29500);
  } else if (env("SLURM_NTASKS") && env("SLURM_PROCID") && env_int("SLURM_NTASKS", 1) > 1) {
    r.source = "slurm";
    r.rank = env_int("SLURM_PROCID", 0);
    r.world = env_int("SLURM_NTASKS", 1);
    r.local_rank = env_int("SLURM_LOCALID", 0);
    if (env("SLURM_JOB_NODELIST")) r.master_addr = first_host(env("SLURM_JOB_NODELIST"));
    if (env("KDX_MASTER_ADDR")) r.master_addr = env("KDX_MASTER_ADDR");
    // A port every rank derives alike from the job id, unless kdx set one.
    r.master_port = env_int("KDX_MASTER_PORT", 20000 + env_int("SLURM_JOB_ID", 0) % 20000);
  }
  if (r.world < 1 || r.rank < 0 || r.rank >= r.world)
    throw Error("inconsistent rank variables: rank " + std::to_string(r.rank) + " of world size " +
                std::to_string(r.world));
  if (r.master_port <= 0 || r.master_port > 65535)
    throw Error("bad master port " + std::to_string(r.master_port));
  return r;
}

std::unique_ptr<Reducer> make_reducer_from_env(const torch::Device& device) {
  auto info = rank_info_from_env();
  if (info.world == 1) {
    auto r = make_single_process();
    r->device = device;
    return r;
  }
  auto timeout = std::chrono::seconds(env_int("KDX_RENDEZVOUS_TIMEOUT", 60));
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(info.master_port);
    o.isServer = info.rank == 0;
    o.numWorkers = static_cast<size_t>(info.world);
    o.waitWorkers = true;
    o.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(info.master_addr, o);
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(info.rank) + " could not rendezvous with " +
                std::to_string(info.world - 1) + " other rank(s) at " + info.master_addr + ":" +
                std::to_string(info.master_port) + " within " + std::to_string(timeout.count()) +
                " s (KDX_RENDEZVOUS_TIMEOUT): " + e.what());
  }
  // Our own bounded rendezvous: every rank checks in, and nobody builds the process group
  // (whose connects wait for the long collective timeout) until all have.
  auto rendezvous_error = [&](const std::string& why) {
    return Error("rank " + std::to_string(info.rank) + " could not rendezvous with " +
                 std::to_string(info.world - 1) + " other rank(s) at " + info.master_addr + ":" +
                 std::to_string(info.master_port) + " within " + std::to_string(timeout.count()) +
                 " s (KDX_RENDEZVOUS_TIMEOUT): " + why);
  };
  try {
    store->add("kdx/arrived", 1);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int64_t arrived;
    while ((arrived = store->add("kdx/arrived", 0)) < info.world) {
      if (std::chrono::steady_clock::now() > deadline)
        throw rendezvous_error(std::to_string(arrived) + " of " + std::to_string(info.world) +
                               " ranks arrived");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw rendezvous_error(e.what());
  }
  auto collective_timeout = std::chrono::seconds(env_int("KDX_COLLECTIVE_TIMEOUT", 300));
  c10::intrusive_ptr<compat::C10dGroup> pg;
  std::string backend = "gloo";
#if defined(USE_C10D_NCCL)
  if (device.is_cuda()) {
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = collective_timeout;
    pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, info.rank, info.world, o);
    backend = "nccl";
  }
#endif
  if (!pg) {
    auto o = c10d::ProcessGroupGloo::Options::create();
    o->timeout = collective_timeout;
    o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, info.rank, info.world, o);
  }
  auto r = std::make_unique<C10dReducer>(pg);
  r->rank = info.rank;
  r->world = info.world;
  r->local_rank = info.local_rank;
  r->backend = backend;
  r->device = backend == "nccl" ? device : torch::Device(torch::kCPU);
  return r;
}

}  // namespace kdx::distributed
