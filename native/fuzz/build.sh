#!/usr/bin/env bash
# Build the libFuzzer targets of the native byte kernels (no Node): each target
# links the pure kernels from native/src with one harness, under
# AddressSanitizer and UndefinedBehaviorSanitizer (any UB report aborts).
# Usage: native/fuzz/build.sh [TARGET...]   (default: all; binaries in native/fuzz/build/)
# Needs clang with libFuzzer: Debian's `clang` plus `libclang-rt-dev` (clang 14 here).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/../src"
out="$here/build"
CXX="${CXX:-clang++}"
if ! command -v "$CXX" >/dev/null; then
  echo "build.sh: $CXX not found: apt-get install -y clang libclang-rt-dev" >&2
  exit 2
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(segment coalesce tunnel checksum)
mkdir -p "$out"
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -Wall -Wextra
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
kernels=("$src/csum.cc" "$src/frame.cc" "$src/offload.cc" "$src/tunnel.cc")
# the shared limits header, generated from native/limits.json as the addon build does
node "$here/../gen-limits.mjs" "$out/gen/vxtap_limits.h"
for t in "${targets[@]}"; do
  [ -f "$here/fuzz_$t.cc" ] || { echo "build.sh: no target '$t' (fuzz_$t.cc)" >&2; exit 2; }
  echo "build.sh: fuzz_$t" >&2
  "$CXX" "${flags[@]}" -I"$src" -I"$out/gen" "$here/fuzz_$t.cc" "${kernels[@]}" -o "$out/fuzz_$t"
done
