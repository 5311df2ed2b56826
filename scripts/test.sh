#!/usr/bin/env bash
# `npm test`: the two vitest projects side by side. Integration files run one at
# a time at normal priority; they mostly wait on real processes (etcd TTLs and
# outages, pings, SSH, bench trials). The unit files are pure and CPU-bound, so they
# run beside them at nice 15 and take only CPU time the integration tests leave
# idle (a nice-15 task gets ~3% of a contended CPU against a nice-0 one). One after
# the other the suite took 11 min on 2 cores; side by side it fits in 10.
# Arguments (`npm test -- test/unit/fdb.test.ts`) run plain `vitest run ARGS`.
set -u
cd "$(dirname "$0")/.."
vitest=node_modules/.bin/vitest
if [ $# -gt 0 ]; then exec "$vitest" run "$@"; fi
unit_log=$(mktemp /tmp/vxtap-unit.XXXXXX)
trap 'rm -f "$unit_log"' EXIT
nice -n 15 "$vitest" run --project unit >"$unit_log" 2>&1 &
unit_pid=$!
"$vitest" run --project integration
integration_rc=$?
wait "$unit_pid"
unit_rc=$?
echo
echo "---- unit project (ran at nice 15 beside the integration project) ----"
cat "$unit_log"
echo "npm test: integration exit $integration_rc, unit exit $unit_rc"
[ "$integration_rc" -eq 0 ] && [ "$unit_rc" -eq 0 ]
