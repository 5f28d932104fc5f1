#!/usr/bin/env node
// The `fleetward-agent` command: the compiled daemon in dist/.
try {
  await import('../dist/cli/agent-main.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli/agent-main.js')) {
    console.error('fleetward-agent is not built yet: run `npm run build` in the repository first');
    process.exit(2);
  }
  throw error;
}
