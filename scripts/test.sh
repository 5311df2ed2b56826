#!/usr/bin/env bash
# `npm test`: the three vitest projects (vitest.config.ts) side by side.
# - control (etcd, restarts, CNI, and eight speed-free dataplane files for balance,
#   see vitest.config.ts): mostly waits on TTLs, outages and restarts, and
#   asserts time bounds, so it runs at normal priority;
# - traffic (dataplane, bench): CPU-bound real traffic, at nice 5, so that a control
#   file's time bound is not spent waiting behind an iperf3 run (CFS weights
#   1024:335, control gets ~3/4 of a contended CPU);
# - unit: pure and CPU-bound, at nice 10, taking mostly what the others leave idle.
#   Its tests must not block a worker synchronously for long (a chain of
#   execFileSync calls): on a loaded machine that ran past vitest's 60 s worker
#   RPC timeout ("Timeout calling onTaskUpdate") although every test passed.
# One after the other the suite took over 11 min on 2 cores; side by side it fits in 10.
# Arguments (`npm test -- test/unit/fdb.test.ts`) run plain `vitest run ARGS`.
set -u
cd "$(dirname "$0")/.."
vitest=node_modules/.bin/vitest
# Benches under test measure at normal CPU weight: in their top-weight group
# (bench/placement.ts) they would starve the projects running beside them.
export VXTAP_TEST_CPU_PRIORITY=normal
if [ $# -gt 0 ]; then exec "$vitest" run "$@"; fi
control_log=$(mktemp /tmp/vxtap-control.XXXXXX)
unit_log=$(mktemp /tmp/vxtap-unit.XXXXXX)
traffic_log=$(mktemp /tmp/vxtap-traffic.XXXXXX)
trap 'rm -f "$control_log" "$unit_log" "$traffic_log"' EXIT
t0=$SECONDS
"$vitest" run --project control >"$control_log" 2>&1 &
control_pid=$!
nice -n 10 "$vitest" run --project unit --fileParallelism --maxWorkers 2 >"$unit_log" 2>&1 &
unit_pid=$!
nice -n 5 "$vitest" run --project traffic 2>&1 | tee "$traffic_log"
traffic_rc=${PIPESTATUS[0]}
wait "$control_pid"
control_rc=$?
wait "$unit_pid"
unit_rc=$?
echo
echo "---- control project (etcd, restarts, CNI; ran beside the traffic project) ----"
cat "$control_log"
echo
echo "---- unit project (ran at nice 10 beside the integration projects) ----"
cat "$unit_log"
# CI shows only the last lines of a run: name every failed test there, with its first error line.
failed=$(sed 's/\x1b\[[0-9;]*m//g' "$traffic_log" "$control_log" "$unit_log" | grep -E '^ *(FAIL|×) |^(AssertionError|Error|TypeError)' | sort -u | head -40)
if [ -n "$failed" ]; then
  echo
  echo "---- failed (all projects) ----"
  echo "$failed"
fi
echo "npm test: traffic exit $traffic_rc, control exit $control_rc, unit exit $unit_rc, $((SECONDS - t0)) s"
[ "$traffic_rc" -eq 0 ] && [ "$control_rc" -eq 0 ] && [ "$unit_rc" -eq 0 ]
