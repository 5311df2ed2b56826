#!/usr/bin/env bash
# CI regression check on a self-hosted runner: what .github/workflows/bench.yml runs (as root).
#
#   scripts/bench-ci.sh [extra vxtap bench ci flags, e.g. --hosts A,B]
#
# 1. picks the base: the last good main commit recorded in $HISTORY/last-good/commit
#    (VXTAP_BENCH_CI_BASE overrides; with none recorded yet, the parent commit);
# 2. runs `vxtap bench ci --base <that commit>`: the base built in a git worktree,
#    base and head benched interleaved (ABAB) on this runner, rounds added under
#    the stopping rule while the gating metrics are unknown, up to $ROUNDS per side;
#    any `worse` verdict fails; report.html also draws the history so far ($HISTORY/runs
#    and this head) with its change points (`--history`);
# 3. files head's result under $HISTORY/runs/ and renders `vxtap bench history`
#    over them (change points: slow drifts no pairwise comparison sees; reported,
#    not failing);
# 4. records this commit as the last good one when nothing got worse, the run was
#    complete and the ref is the main branch.
# Outputs in $OUT: result.json (head, all rounds), base-result.json, report.html,
# comparison.md, comparison.json, ci.json, history.md, history.json, verdict.txt.
# Exit status: 0 no regression, 1 a `worse` verdict or a failed build/bench or an
# incomplete run, 2 bad configuration.
#
# Environment (all optional):
#   VXTAP                      command that runs vxtap (default: node dist/src/cli/main.js)
#   VXTAP_BENCH_CI_OUT         output directory (default: ci-out)
#   VXTAP_BENCH_CI_HISTORY     persistent history directory on the runner
#                              (default: /var/lib/vxtap-bench-ci/default)
#   VXTAP_BENCH_CI_BASE        the commit to compare with (default: the last good main commit)
#   VXTAP_BENCH_CI_MODES       modes (default: kernel-vxlan,vxtap)
#   VXTAP_BENCH_CI_ROUNDS      cap on rounds per side (default: 12; looks at 6, 9, 12)
#   VXTAP_BENCH_CI_METRICS     metrics that gate (default: tcp1Gbps,tcpNGbps,latIdleP50)
#   VXTAP_BENCH_CI_THRESHOLDS  thresholds file from `vxtap bench compare --calibrate`
#   VXTAP_BENCH_CI_REF         the ref benched (default: $GITHUB_REF or the current branch)
#   VXTAP_BENCH_CI_MAIN        the ref whose good commits become the base (default: refs/heads/main)
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a VXTAP_CMD <<<"${VXTAP:-node dist/src/cli/main.js}"
OUT=${VXTAP_BENCH_CI_OUT:-ci-out}
HISTORY=${VXTAP_BENCH_CI_HISTORY:-/var/lib/vxtap-bench-ci/default}
BASE=${VXTAP_BENCH_CI_BASE:-}
MODES=${VXTAP_BENCH_CI_MODES:-kernel-vxlan,vxtap}
ROUNDS=${VXTAP_BENCH_CI_ROUNDS:-12}
METRICS=${VXTAP_BENCH_CI_METRICS:-tcp1Gbps,tcpNGbps,latIdleP50}
THRESHOLDS=${VXTAP_BENCH_CI_THRESHOLDS:-}
REF=${VXTAP_BENCH_CI_REF:-${GITHUB_REF:-refs/heads/$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)}}
MAIN=${VXTAP_BENCH_CI_MAIN:-refs/heads/main}

say() { printf 'bench-ci: %s\n' "$*" >&2; }
die2() { say "$*"; exit 2; }
is_commit() { git rev-parse --verify --quiet "$1^{commit}" >/dev/null 2>&1; }
json_field() { node -e 'const v=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));const p=process.argv[2].split(".").reduce((o,k)=>o==null?o:o[k],v);process.stdout.write(p==null?"":String(p))' "$1" "$2" 2>/dev/null || true; }

[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die2 "VXTAP_BENCH_CI_ROUNDS must be an integer >= 1 (got \"$ROUNDS\")"
[[ -z $THRESHOLDS || -r $THRESHOLDS ]] || die2 "VXTAP_BENCH_CI_THRESHOLDS: cannot read \"$THRESHOLDS\""
HEAD_COMMIT=$(git rev-parse --verify HEAD) || die2 "not a git checkout with a commit"
mkdir -p "$OUT" "$HISTORY/runs" || die2 "cannot create $OUT or $HISTORY/runs"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT"/result.json "$OUT"/base-result.json "$OUT"/report.html "$OUT"/comparison.* "$OUT"/ci.json "$OUT"/history.* "$OUT"/verdict.txt "$OUT"/ci

# 1. the base: the last good main commit
if [[ -n $BASE ]]; then
  is_commit "$BASE" || die2 "VXTAP_BENCH_CI_BASE: \"$BASE\" is not a commit in this checkout"
elif [[ -s $HISTORY/last-good/commit ]]; then
  BASE=$(tr -d '[:space:]' <"$HISTORY/last-good/commit")
  if ! is_commit "$BASE"; then
    say "the last good commit $BASE is not in this checkout (a shallow clone? the workflow fetches all history); comparing with the parent commit"
    BASE=HEAD~1
  fi
else
  say "no last good commit recorded yet in $HISTORY/last-good/commit: comparing with the parent commit"
  BASE=HEAD~1
fi
is_commit "$BASE" || die2 "no base to compare with: $BASE is not a commit (a repository with one commit?); set VXTAP_BENCH_CI_BASE"
BASE=$(git rev-parse --verify "$BASE^{commit}")

# 2. base and head interleaved, the stopping rule, the comparison
say "comparing $REF ($HEAD_COMMIT) with $BASE: modes $MODES, up to $ROUNDS rounds per side"
# --history: report.html gets the trend of the runs filed so far (and this head) with its change points.
extra=(--modes "$MODES" --rounds "$ROUNDS" --metrics "$METRICS" --fail-on-regression 0 --out "$OUT/ci" --history "$HISTORY/runs")
[[ -n $THRESHOLDS ]] && extra+=(--thresholds "$THRESHOLDS")
ci_status=0
"${VXTAP_CMD[@]}" bench ci --base "$BASE" "${extra[@]}" "$@" || ci_status=$?
if [[ $ci_status -eq 2 ]]; then
  echo "bad configuration: vxtap bench ci exited 2 (see the log)" >"$OUT/verdict.txt"
  exit 2
fi
run_dir=$(ls -1d "$OUT"/ci/*-ci/ 2>/dev/null | sort | tail -n 1 || true)
for f in result.json base-result.json report.html comparison.md comparison.json ci.json; do
  [[ -n $run_dir && -f $run_dir/$f ]] && cp "$run_dir/$f" "$OUT/$f"
done
if [[ ! -f $OUT/comparison.json || ! -f $OUT/result.json ]]; then
  echo "bench ci failed (exit $ci_status): no comparison; see the job log${run_dir:+ and $run_dir}" >"$OUT/verdict.txt"
  say "$(cat "$OUT/verdict.txt")"
  exit 1
fi

# 3. file head's result and render the history (reported, never failing the job)
stamp=$(basename "$run_dir")
mkdir -p "$HISTORY/runs/$stamp-${HEAD_COMMIT:0:12}"
cp "$OUT/result.json" "$HISTORY/runs/$stamp-${HEAD_COMMIT:0:12}/result.json"
"${VXTAP_CMD[@]}" bench history "$HISTORY/runs" --metrics "$METRICS" >"$OUT/history.md" 2>/dev/null || say "history failed (not fatal)"
"${VXTAP_CMD[@]}" bench history "$HISTORY/runs" --metrics "$METRICS" --json >"$OUT/history.json" 2>/dev/null || true

# 4. verdict; a good, complete main run becomes the base of the next
if [[ $ci_status -ne 0 ]]; then
  echo "regression: a worse verdict against $BASE (exit $ci_status)" >"$OUT/verdict.txt"
  say "regression: see $OUT/comparison.md"
  exit 1
fi
head_status=$(json_field "$OUT/result.json" status)
if [[ $head_status != complete ]]; then
  echo "bench incomplete (head result \"$head_status\"); compared, not recorded as good" >"$OUT/verdict.txt"
  say "$(cat "$OUT/verdict.txt")"
  exit 1
fi
if [[ $REF == "$MAIN" ]]; then
  mkdir -p "$HISTORY/last-good"
  printf '%s\n' "$HEAD_COMMIT" >"$HISTORY/last-good/commit.tmp" && mv "$HISTORY/last-good/commit.tmp" "$HISTORY/last-good/commit"
  cp "$OUT/result.json" "$HISTORY/last-good/result.json.tmp" && mv "$HISTORY/last-good/result.json.tmp" "$HISTORY/last-good/result.json"
  echo "ok: no regression against $BASE; $HEAD_COMMIT is the new last good commit" >"$OUT/verdict.txt"
else
  echo "ok: no regression against $BASE ($REF is not $MAIN: last good commit kept)" >"$OUT/verdict.txt"
fi
say "$(cat "$OUT/verdict.txt")"
