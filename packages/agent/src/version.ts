/** The agent's version, reported in its inventory (kept equal to package.json's by a test). */
export const AGENT_VERSION = '0.1.0';
