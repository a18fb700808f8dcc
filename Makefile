# Two commands do all set-up on a fresh Debian 12 machine: `make demo` and `make test`.
BUILD ?= build
# The torch-free code again, under AddressSanitizer + UndefinedBehaviorSanitizer (clang),
# with its unit tests and the libFuzzer targets.
ASAN_BUILD ?= build-asan
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
FUZZ_SECONDS ?= 600

.PHONY: all bootstrap build asan test demo bench fuzz format clean

all: build

bootstrap:
	@./tools/bootstrap

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: bootstrap $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/Makefile: CMakeLists.txt
	CXX=clang++ cmake -S . -B $(ASAN_BUILD) -DKDX_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo

asan: bootstrap $(ASAN_BUILD)/Makefile
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Every test: the normal build's (unit, worker, Slurm with its chaos scenarios), then the
# sanitizer build's (unit tests under ASan+UBSan, each fuzz target for a bounded run).
test: build asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

# The fuzz targets for as long as asked (seconds each): make fuzz FUZZ_SECONDS=3600
fuzz: asan
	./tools/fuzz $(ASAN_BUILD) $(FUZZ_SECONDS)

demo: build
	./tools/demo

bench: build
	./tools/bench/run

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
