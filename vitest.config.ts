import { defineConfig } from 'vitest/config';

// Integration tests build namespaces and move real traffic on a 2-core machine:
// files run one at a time so that their figures and timeouts do not fight.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
