#!/usr/bin/env bash
# CI regression check on a self-hosted runner (interim, until `vxtap bench ci`
# builds the base commit and runs base and head interleaved on the same hosts).
#
#   scripts/bench-ci.sh            # what .github/workflows/bench.yml runs (as root)
#
# 1. benches this checkout: `vxtap bench --modes $MODES --rounds $ROUNDS`;
# 2. compares it with the last good result kept in $HISTORY/last-good/
#    (`vxtap bench compare --fail-on-regression 0`: any `worse` verdict fails);
# 3. files the result under $HISTORY/runs/ and renders `vxtap bench history`
#    over them (change points; reported, not failing);
# 4. promotes the result to last-good when nothing got worse and the ref is
#    the main branch.
# Outputs in $OUT: result.json, report.html (when the bench writes one),
# comparison.md, comparison.json, history.md, history.json, verdict.txt.
# Exit status: 0 no regression (also: no baseline yet), 1 a `worse` verdict or
# a failed bench, 2 bad configuration.
#
# Environment (all optional):
#   VXTAP                      command that runs vxtap (default: node dist/src/cli/main.js)
#   VXTAP_BENCH_CI_OUT         output directory (default: ci-out)
#   VXTAP_BENCH_CI_HISTORY     persistent history directory on the runner
#                              (default: /var/lib/vxtap-bench-ci/default)
#   VXTAP_BENCH_CI_MODES       modes (default: kernel-vxlan,vxtap)
#   VXTAP_BENCH_CI_ROUNDS      rounds per run (default: 12 = the stopping rule's cap,
#                              one look: this script cannot add rounds to a finished run)
#   VXTAP_BENCH_CI_METRICS     metrics that gate (default: tcp1Gbps,tcpNGbps,latIdleP50)
#   VXTAP_BENCH_CI_THRESHOLDS  thresholds file from `vxtap bench compare --calibrate`
#   VXTAP_BENCH_CI_REF         the ref benched (default: $GITHUB_REF or the current branch)
#   VXTAP_BENCH_CI_MAIN        the ref whose good results become the baseline (default: refs/heads/main)
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a VXTAP_CMD <<<"${VXTAP:-node dist/src/cli/main.js}"
OUT=${VXTAP_BENCH_CI_OUT:-ci-out}
HISTORY=${VXTAP_BENCH_CI_HISTORY:-/var/lib/vxtap-bench-ci/default}
MODES=${VXTAP_BENCH_CI_MODES:-kernel-vxlan,vxtap}
ROUNDS=${VXTAP_BENCH_CI_ROUNDS:-12}
METRICS=${VXTAP_BENCH_CI_METRICS:-tcp1Gbps,tcpNGbps,latIdleP50}
THRESHOLDS=${VXTAP_BENCH_CI_THRESHOLDS:-}
REF=${VXTAP_BENCH_CI_REF:-${GITHUB_REF:-refs/heads/$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)}}
MAIN=${VXTAP_BENCH_CI_MAIN:-refs/heads/main}

say() { printf 'bench-ci: %s\n' "$*" >&2; }
die2() { say "$*"; exit 2; }

[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 2 ]] || die2 "VXTAP_BENCH_CI_ROUNDS must be an integer >= 2 (got \"$ROUNDS\")"
[[ -z $THRESHOLDS || -r $THRESHOLDS ]] || die2 "VXTAP_BENCH_CI_THRESHOLDS: cannot read \"$THRESHOLDS\""
mkdir -p "$OUT" "$HISTORY/runs" || die2 "cannot create $OUT or $HISTORY/runs"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/result.json "$OUT"/report.html "$OUT"/comparison.* "$OUT"/history.* "$OUT"/verdict.txt

# 1. bench this checkout
say "benching $REF: modes $MODES, $ROUNDS rounds"
bench_status=0
"${VXTAP_CMD[@]}" bench --modes "$MODES" --rounds "$ROUNDS" --out "$OUT/runs" --no-progress || bench_status=$?
run_dir=$(ls -1d "$OUT"/runs/*/ 2>/dev/null | sort | tail -n 1 || true)
if [[ -z $run_dir || ! -f $run_dir/result.json ]]; then
  echo "bench failed (exit $bench_status): no result.json" >"$OUT/verdict.txt"
  say "the bench wrote no result.json (exit $bench_status)"
  exit 1
fi
cp "$run_dir/result.json" "$OUT/result.json"
[[ -f $run_dir/report.html ]] && cp "$run_dir/report.html" "$OUT/report.html"

# 2. compare with the last good result
compare_status=0
base="$HISTORY/last-good/result.json"
if [[ -f $base ]]; then
  extra=(--metrics "$METRICS")
  [[ -n $THRESHOLDS ]] && extra+=(--thresholds "$THRESHOLDS")
  "${VXTAP_CMD[@]}" bench compare "$base" "$OUT/result.json" "${extra[@]}" --json >"$OUT/comparison.json" || compare_status=$?
  if [[ $compare_status -eq 0 ]]; then
    "${VXTAP_CMD[@]}" bench compare "$base" "$OUT/result.json" "${extra[@]}" --fail-on-regression 0 >"$OUT/comparison.md" || compare_status=$?
  fi
  if [[ $compare_status -ge 2 ]]; then
    say "compare failed (exit $compare_status)"
    echo "compare failed (exit $compare_status)" >"$OUT/verdict.txt"
    exit 2
  fi
else
  printf '# vxtap bench compare\n\nNo baseline yet (%s): this run becomes the baseline if it is on %s.\n' "$base" "$MAIN" >"$OUT/comparison.md"
fi

# 3. file the result and render the history (reported, never failing the job)
stamp=$(basename "$run_dir")
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
mkdir -p "$HISTORY/runs/$stamp-$commit"
cp "$OUT/result.json" "$HISTORY/runs/$stamp-$commit/result.json"
"${VXTAP_CMD[@]}" bench history "$HISTORY/runs" --metrics "$METRICS" >"$OUT/history.md" 2>/dev/null || say "history failed (not fatal)"
"${VXTAP_CMD[@]}" bench history "$HISTORY/runs" --metrics "$METRICS" --json >"$OUT/history.json" 2>/dev/null || true

# 4. verdict; promote a good main result to the baseline
if [[ $compare_status -eq 1 ]]; then
  echo "regression: a worse verdict against $base" >"$OUT/verdict.txt"
  say "regression: see $OUT/comparison.md"
  exit 1
fi
if [[ $bench_status -ne 0 ]]; then
  echo "bench incomplete (exit $bench_status); compared, not promoted" >"$OUT/verdict.txt"
  say "the bench was incomplete (exit $bench_status)"
  exit 1
fi
if [[ $REF == "$MAIN" ]]; then
  mkdir -p "$HISTORY/last-good"
  cp "$OUT/result.json" "$HISTORY/last-good/result.json.tmp" && mv "$HISTORY/last-good/result.json.tmp" "$HISTORY/last-good/result.json"
  echo "ok: no regression; promoted to the baseline" >"$OUT/verdict.txt"
else
  echo "ok: no regression ($REF is not $MAIN: baseline kept)" >"$OUT/verdict.txt"
fi
say "$(cat "$OUT/verdict.txt")"
