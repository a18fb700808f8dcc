#!/usr/bin/env bash
# The configure step refuses a silently mixed LibTorch: pointing CMAKE_PREFIX_PATH at a
# wheel's torch/share/cmake while Debian's libtorch-dev is installed finds 2.x headers and
# Debian's 1.13 libraries. Expects the error; exits non-zero if configure succeeds.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
prefix=$("$src/tools/cuda-env")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
if cmake -S "$src" -B "$dir" -DCMAKE_PREFIX_PATH="$prefix/share/cmake" \
     -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" >"$dir/log" 2>&1; then
  echo "mixed_torch_check: FAILED: configure accepted $prefix/share/cmake" >&2
  exit 1
fi
if ! grep -q "LibTorch is mixed" "$dir/log"; then
  echo "mixed_torch_check: FAILED: configure failed for another reason:" >&2
  tail -20 "$dir/log" >&2
  exit 1
fi
grep -A3 "LibTorch is mixed" "$dir/log" | sed 's/^/mixed_torch_check: /'
echo "mixed_torch_check: passed (the mixed LibTorch was refused)"
