#!/usr/bin/env bash
# Build the native fuzz targets and run each for a bounded time against its seed
# corpus (native/fuzz/corpus/<target>, read only: new inputs go to a temporary
# directory). Prints, per target, executions, executions per second and the
# coverage reached (libFuzzer's cov: edges and ft: features); exits non-zero when
# any target reports a finding (a crash, a sanitizer report, a failed invariant,
# a leak or a timeout). The input that found it is kept under
# native/fuzz/build/findings/<target>/ with the end of the log. With
# VXTAP_FUZZ_KEEP=DIR the inputs a run adds are kept in DIR/<target> (for
# coverage.sh, or to go on from there) instead of being deleted.
# Usage: native/fuzz/run.sh [SECONDS-PER-TARGET (default 60)] [TARGET...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
seconds="${1:-60}"
shift || true
case "$seconds" in '' | *[!0-9]*) echo "run.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2 ;; esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(segment coalesce tunnel checksum)
"$here/build.sh" "${targets[@]}"
if [ -n "${VXTAP_FUZZ_KEEP:-}" ]; then
  work="$VXTAP_FUZZ_KEEP"
  mkdir -p "$work"
else
  work="$(mktemp -d /tmp/vxtap-fuzz.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
fi
# a smaller ASan quarantine: the machine is shared, and the harnesses free fast
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
failed=()
for t in "${targets[@]}"; do
  findings="$here/build/findings/$t"
  mkdir -p "$work/$t" "$findings"
  log="$work/$t.log"
  status=0
  "$here/build/fuzz_$t" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings/" "$work/$t" "$here/corpus/$t" >"$log" 2>&1 || status=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corp="$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")"
  if [ "$status" -eq 0 ]; then
    echo "fuzz $t: ${seconds} s, ${execs:-?} execs, ${rate:-?} exec/s, cov: ${cov:-?} ft: ${ft:-?}, corpus ${corp:-?} inputs: ok"
  else
    cp "$log" "$findings/last.log"
    echo "fuzz $t: FINDING after ${execs:-?} execs (exit $status); input and log in $findings" >&2
    grep -E 'invariant failed|ERROR: |runtime error|SUMMARY' "$log" | head -5 >&2 || true
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
