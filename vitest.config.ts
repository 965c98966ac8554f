import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Two cores here: files run in parallel, but not so many that loopback servers starve.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
