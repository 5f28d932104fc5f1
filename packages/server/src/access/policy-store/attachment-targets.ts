import type { Transaction } from 'kysely';
import { FleetwardError } from '@fleetward/protocol';
import type { AttachmentTarget } from '../policy/index.js';
import type { Tables } from '../../store/tables.js';

/** The foreign-key columns of an attachment row for one target. */
export interface ResolvedTarget {
  readonly target: AttachmentTarget;
  readonly thing_id: string | null;
  readonly group_id: string | null;
  readonly certificate_serial: string | null;
}

const MAX_TARGET_LENGTH = 200;

/**
 * Parses a target given as `{ thing }`, `{ group }` or `{ certificate }` (API body, CLI flags):
 * exactly one must be named.
 */
export function attachmentTarget(request: { readonly thing?: string | undefined; readonly group?: string | undefined; readonly certificate?: string | undefined }): AttachmentTarget {
  const named = (['thing', 'group', 'certificate'] as const).flatMap((kind) => (request[kind] === undefined ? [] : [{ kind, name: request[kind] }]));
  if (named.length !== 1) throw new FleetwardError('FW_ERR_VALIDATION', 'name exactly one target: a thing, a group or a certificate serial', { field: 'target' });
  const target = named[0] as AttachmentTarget;
  if (target.name.length === 0 || target.name.length > MAX_TARGET_LENGTH) throw new FleetwardError('FW_ERR_VALIDATION', `a ${target.kind} name is 1-${MAX_TARGET_LENGTH} characters`, { field: target.kind });
  return normalizeTarget(target);
}

/** Serials are stored in lower case (certificates.ts serialOf); names are case-sensitive. */
export function normalizeTarget(target: AttachmentTarget): AttachmentTarget {
  return target.kind === 'certificate' ? { kind: 'certificate', name: target.name.toLowerCase() } : target;
}

/** Finds the thing, group or certificate an attachment is for; refuses what cannot use a policy. */
export async function resolveTarget(trx: Transaction<Tables>, given: AttachmentTarget): Promise<ResolvedTarget> {
  const target = normalizeTarget(given);
  switch (target.kind) {
    case 'thing': {
      const row = await trx.selectFrom('things').select(['id', 'state']).where('name', '=', target.name).executeTakeFirst();
      if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `thing ${target.name} does not exist`, { thing: target.name });
      if (row.state === 'decommissioned') throw new FleetwardError('FW_ERR_CONFLICT', `thing ${target.name} is decommissioned`, { thing: target.name });
      return { target, thing_id: row.id, group_id: null, certificate_serial: null };
    }
    case 'group': {
      const row = await trx.selectFrom('thing_groups').select('id').where('name', '=', target.name).executeTakeFirst();
      if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `group ${target.name} does not exist`, { group: target.name });
      return { target, thing_id: null, group_id: row.id, certificate_serial: null };
    }
    case 'certificate': {
      const row = await trx.selectFrom('certificates').select(['serial', 'kind']).where('serial', '=', target.name).executeTakeFirst();
      if (!row) throw new FleetwardError('FW_ERR_NOT_FOUND', `certificate ${target.name} does not exist`, { serial: target.name });
      // A claim certificate only ever gets the fixed claim policy at the gateway: attaching would mislead.
      if (row.kind !== 'device') throw new FleetwardError('FW_ERR_CONFLICT', `certificate ${target.name} is a ${row.kind} certificate; policies attach to device certificates`, { serial: target.name });
      return { target, thing_id: null, group_id: null, certificate_serial: row.serial };
    }
  }
}
