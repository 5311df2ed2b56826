import { defineConfig } from 'vitest/config';

// Two projects. Unit tests are pure and run two files at a time (one per core).
// Integration tests build namespaces and move real traffic on a 2-core machine:
// their files run one at a time so that their figures and timeouts do not fight.
// `npm test` (scripts/test.sh) runs the unit project at nice 15 beside the
// integration project, so unit tests only take CPU the integration tests leave idle.
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], fileParallelism: true, poolOptions: { forks: { maxForks: 2, minForks: 1 } } } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], fileParallelism: false } },
    ],
  },
});
