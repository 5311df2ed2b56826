import { defineConfig } from 'vitest/config';

// Three projects. Unit tests are pure (scripts/test.sh runs two files at a time).
// Integration tests build namespaces and run real processes on a 2-core machine;
// they are split by what they spend their time on, and each project runs its files
// one at a time:
// - `control`: the control plane on a real etcd, restarts, CNI pods. These files
//   mostly wait (lease TTLs, an etcd outage, restarts) and assert bounds on time
//   (join within 2 s, dark time within 1 s), so they get CPU first.
// - `traffic`: the dataplane and the bench, which move real traffic and are CPU-bound.
// `npm test` (scripts/test.sh) runs `control` and `traffic` side by side, `traffic`
// at a lower priority, and `unit` at nice 15 beside both. Every file uses its own
// name prefix for namespaces and links, so files in different projects never meet.
// Vitest 3 reads file parallelism and worker counts from the root only (they are
// not project options), so the root runs files one at a time, whatever the
// number of cores, and scripts/test.sh lets the unit project run two at a time.
// The last eight are there for balance, not for kind: they assert no speed (learning
// and flooding limits, interop with kernel VXLAN, report.html in Chromium, the pair,
// the uplink, the addon, malformed input, offload TAPs) and run no bench. In `traffic`
// the first three made npm test's critical path 640 s of its 600; with them moved,
// bench-remote.test.ts slowed under load (246 s against 138 s alone) and the run
// took 601 s, so the next five followed (~70 s).
// bench-hangup.test.ts (four short bare-mode benches, ~30 s) asserts clean-up and the
// one-local-run lock, no speed.
const CONTROL = [
  'test/integration/etcd-*.test.ts',
  'test/integration/lifecycle.test.ts',
  'test/integration/cni.test.ts',
  'test/integration/learn-flood.test.ts',
  'test/integration/kernel-interop.test.ts',
  'test/integration/report-browser.test.ts',
  'test/integration/vxtap-pair.test.ts',
  'test/integration/uplink.test.ts',
  'test/integration/native.test.ts',
  'test/integration/malformed.test.ts',
  'test/integration/offload-tap.test.ts',
  'test/integration/bench-hangup.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'control', include: CONTROL } },
      { extends: true, test: { name: 'traffic', include: ['test/integration/**/*.test.ts'], exclude: CONTROL } },
    ],
  },
});
