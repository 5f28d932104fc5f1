import type { Migration, MigrationProvider } from 'kysely';
import type { StoreDialect } from '../store.js';
import { foundation } from './0001-foundation.js';
import { registry } from './0002-registry.js';
import { certificates } from './0003-certificates.js';
import { provisioning } from './0004-provisioning.js';
import { registeredCas } from './0005-registered-cas.js';
import { pendingIssuingCas } from './0006-pending-issuing-cas.js';
import { credentialAudit } from './0007-credential-audit.js';
import { liveRevocation } from './0008-live-revocation.js';
import { policies } from './0009-policies.js';
import { dataContracts } from './0010-data-contracts.js';
import { deviceBans } from './0011-device-bans.js';
import { updates } from './0012-updates.js';
import { auditCheckpoints } from './0013-audit-checkpoints.js';
import { monitor } from './0014-monitor.js';
import { alerts } from './0015-alerts.js';
import { dataWebhooks } from './0016-data-webhooks.js';

/** Every migration, in order. One set for both dialects; a migration branches only where the SQL must differ (column types, triggers). */
const migrations: readonly [string, (dialect: StoreDialect) => Migration][] = [
  ['0001_foundation', foundation],
  ['0002_registry', registry],
  ['0003_certificates', certificates],
  ['0004_provisioning', provisioning],
  ['0005_registered_cas', registeredCas],
  ['0006_pending_issuing_cas', pendingIssuingCas],
  ['0007_credential_audit', credentialAudit],
  ['0008_live_revocation', liveRevocation],
  ['0009_policies', policies],
  ['0010_data_contracts', dataContracts],
  ['0011_device_bans', deviceBans],
  ['0012_updates', updates],
  ['0013_audit_checkpoints', auditCheckpoints],
  ['0014_monitor', monitor],
  ['0015_alerts', alerts],
  ['0016_data_webhooks', dataWebhooks],
];

export function migrationProvider(dialect: StoreDialect): MigrationProvider {
  return { getMigrations: () => Promise.resolve(Object.fromEntries(migrations.map(([name, make]) => [name, make(dialect)]))) };
}
