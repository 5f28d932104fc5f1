import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests run against the sources of sibling workspaces, not their build output.
    alias: {
      '@fleetward/protocol': fileURLToPath(new URL('./packages/protocol/src/index.ts', import.meta.url)),
      '@fleetward/broker': fileURLToPath(new URL('./packages/broker/src/index.ts', import.meta.url)),
      '@fleetward/agent': fileURLToPath(new URL('./packages/agent/src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    globalSetup: ['packages/server/test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
