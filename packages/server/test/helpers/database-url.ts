/** The PostgreSQL the tests use (the machine's local server, trust auth, database `test`). */
export const TEST_DATABASE_URL = process.env.FLEETWARD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
