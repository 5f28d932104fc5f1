import { FleetwardError } from '@fleetward/protocol';

/**
 * The importer's refusal: FW_ERR_VALIDATION with the JSON-pointer-like path into the AWS document
 * (`/Statement/1/Resource/0`) and the statement (its Sid, or its index), so the operator knows what to
 * rewrite by hand.
 */
export function untranslatable(path: string, statement: string | null, message: string): FleetwardError {
  const where = statement === null ? '' : `statement ${statement}: `;
  return new FleetwardError('FW_ERR_VALIDATION', `cannot import exactly: ${where}${message}`, { path, ...(statement !== null && { statement }), reason: 'aws-untranslatable' });
}
