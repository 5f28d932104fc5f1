#!/usr/bin/env node
// The `fleetward` command. It is a committed file, so npm can link it at install time; the CLI
// itself is the compiled code in dist/.
try {
  await import('../dist/cli/main.js');
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/cli/main.js')) {
    console.error('fleetward is not built yet: run `npm run build` in the repository first');
    process.exit(2);
  }
  throw error;
}
