#!/usr/bin/env node
// The `fleetward-sim` command: the fleet simulator in dist/.
try {
  await import('../dist/cli/sim-main.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli/sim-main.js')) {
    console.error('fleetward-sim is not built yet: run `npm run build` in the repository first');
    process.exit(2);
  }
  throw error;
}
