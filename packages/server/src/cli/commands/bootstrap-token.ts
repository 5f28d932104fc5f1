import type { IssuedToken } from '../../access/operators.js';

/** How the one-time bootstrap token is shown, with what to do with it. */
export function bootstrapTokenText(token: IssuedToken, apiUrl: string): string {
  return [
    `  Bootstrap admin token (shown only this once; expires ${token.expiresAt}):`,
    `    ${token.token}`,
    '  Create your own admin with it, then revoke the bootstrap operator:',
    `    FLEETWARD_URL=${apiUrl} FLEETWARD_TOKEN=<token> fleetward operator create <you> --role admin`,
  ].join('\n');
}
