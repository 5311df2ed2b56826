#!/usr/bin/env bash
# Line and branch coverage of the kernels (native/src) reached by a corpus: builds
# each target with clang's source-based coverage (no sanitizers), replays
# corpus/<target> plus any extra directories given (e.g. one a longer run.sh
# kept), and prints llvm-cov's report for the kernel files.
# Usage: native/fuzz/coverage.sh [TARGET [EXTRA-CORPUS-DIR...]]   (default: all targets, seed corpus only)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/../src"
out="$here/build/coverage"
CXX="${CXX:-clang++}"
ver="$("$CXX" -dumpversion | cut -d. -f1)"
profdata="$(command -v "llvm-profdata-$ver" || command -v llvm-profdata)"
cov="$(command -v "llvm-cov-$ver" || command -v llvm-cov)"
mkdir -p "$out"
if [ $# -gt 0 ]; then targets=("$1"); shift; else targets=(segment coalesce tunnel checksum); fi
node "$here/../gen-limits.mjs" "$out/gen/vxtap_limits.h"  # the shared limits (native/limits.json)
for t in "${targets[@]}"; do
  bin="$out/fuzz_$t"
  "$CXX" -std=c++17 -g -O1 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -I"$src" -I"$out/gen" \
    "$here/fuzz_$t.cc" "$src/csum.cc" "$src/frame.cc" "$src/offload.cc" "$src/tunnel.cc" -o "$bin"
  rm -f "$out/$t".*.profraw
  LLVM_PROFILE_FILE="$out/$t.%p.profraw" "$bin" -runs=0 "$here/corpus/$t" "$@" >/dev/null 2>&1
  "$profdata" merge -sparse "$out/$t".*.profraw -o "$out/$t.profdata"
  echo "== $t"
  "$cov" report "$bin" -instr-profile="$out/$t.profdata" "$src/csum.cc" "$src/frame.cc" "$src/offload.cc" \
    "$src/tunnel.cc" "$src/csum.h" | sed -e "s#$src/##"
done
