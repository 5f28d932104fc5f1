export { loadConfig, redactedConfig, type LoadedConfig } from './config/load-config.js';
export { settings, flattenSettings, apiUrl, type Config } from './config/settings.js';
export { openHome, openLocal, buildNode, initialize, closeContext, type FleetwardNode, type NodeContext, type InitReport } from './node.js';
export { runCli } from './cli/program.js';
