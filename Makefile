# Two commands do all set-up on a fresh Debian 12 machine: `make demo` and `make test`.
BUILD ?= build
# The torch-free code again, under AddressSanitizer + UndefinedBehaviorSanitizer (clang),
# with its unit tests and the libFuzzer targets.
ASAN_BUILD ?= build-asan
# The cluster's configuration: LibTorch 2.x with CUDA and NCCL (PyPI's wheel, tools/cuda-env).
CUDA_BUILD ?= build-cuda
# What `make test` compiles of it (the whole tree is `make cuda`): the worker, every file
# whose code differs between the LibTorch lines, and the device tests, run on the CPU.
CUDA_TEST_TARGETS ?= kdx-worker kdx-tag device_tests
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKDX_WERROR=ON
FUZZ_SECONDS ?= 600

.PHONY: all bootstrap build asan cuda cuda-test-build navec onnx-env test demo bench fuzz format clean

all: build

bootstrap:
	@./tools/bootstrap

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: bootstrap $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/Makefile: CMakeLists.txt
	CXX=clang++ cmake -S . -B $(ASAN_BUILD) -DKDX_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKDX_WERROR=ON

asan: bootstrap $(ASAN_BUILD)/Makefile
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Configures $(CUDA_BUILD) against the pinned CUDA LibTorch (created on first use).
$(CUDA_BUILD)/Makefile: CMakeLists.txt cmake/TorchCheck.cmake tools/cuda-env
	TORCH_PREFIX=$$(./tools/cuda-env) && \
	cmake -S . -B $(CUDA_BUILD) $(CMAKE_FLAGS) -DCMAKE_PREFIX_PATH="$$TORCH_PREFIX" \
	  -DCMAKE_CUDA_COMPILER=$$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)

# The whole tree against LibTorch 2.x + CUDA + NCCL.
cuda: bootstrap $(CUDA_BUILD)/Makefile
	cmake --build $(CUDA_BUILD) -j $(JOBS)

cuda-test-build: bootstrap $(CUDA_BUILD)/Makefile
	cmake --build $(CUDA_BUILD) -j $(JOBS) --target $(CUDA_TEST_TARGETS)

# Every test: the normal build's (unit, worker, Slurm with its chaos scenarios), the
# sanitizer build's (unit tests under ASan+UBSan, each fuzz target for a bounded run), and
# the CUDA build's (compiled and linked against LibTorch 2.x; its device tests on the CPU).
# navec's vectors (natasha's wheel from PyPI, once, into the cache outside the clone).
NAVEC_CACHE ?= $(or $(KDX_CACHE),$(HOME)/.cache/kdx)
navec: build
	$(BUILD)/bin/kdx data fetch navec --to $(NAVEC_CACHE)

# numpy, onnx and ONNX Runtime from PyPI, pinned, for tools/onnx-export (once, into the cache).
onnx-env: bootstrap
	./tools/onnx-env >/dev/null

test: build asan cuda-test-build navec onnx-env
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)
	$(CUDA_BUILD)/bin/device_tests
	$(CUDA_BUILD)/bin/kdx-worker --help >/dev/null
	tests/programs/mixed_torch_check.sh

# The fuzz targets for as long as asked (seconds each): make fuzz FUZZ_SECONDS=3600
fuzz: asan
	./tools/fuzz $(ASAN_BUILD) $(FUZZ_SECONDS)

demo: build navec
	./tools/demo

bench: build
	./tools/bench/run

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(CUDA_BUILD)
