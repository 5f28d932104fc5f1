// One implementation for the server's ingest and the agent's device-side minimization (protocol/generalize.ts).
export { bucketDateTime, bucketEpochSeconds, bucketOf, roundTo, truncate } from '@fleetward/protocol';
