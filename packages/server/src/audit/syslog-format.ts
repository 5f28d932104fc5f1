import type { AuditRecord } from './audit-events.js';

/** RFC 5424 facility 13, "log audit". */
const FACILITY_LOG_AUDIT = 13;
const SEVERITY: Readonly<Record<string, number>> = { success: 5, denied: 4, failure: 3 };
/** Structured data id: `fleetward` under 32473, the private enterprise number RFC 5612 reserves for documentation. */
export const SD_ID = 'fleetward@32473';
const BOM = '\uFEFF';

export interface SyslogOrigin {
  /** HOSTNAME field: the node's host name (printable ASCII, at most 255). */
  readonly hostname: string;
  readonly appName: string;
}

/** One audit event as a JSON line: every field hashed into the chain, so a reader can re-verify it. */
export function auditJsonLine(record: AuditRecord): string {
  const { seq, ts, actor, action, target, outcome, source, details, prevHash, hash } = record;
  return JSON.stringify({ seq, ts, actor, action, target, outcome, source, details, prevHash, hash });
}

/**
 * One audit event as an RFC 5424 message. MSGID is the action; the structured data element
 * `fleetward@32473` carries `seq` (the collector's de-duplication key), `hash` and `prevHash`;
 * MSG is the event's JSON line (UTF-8 with BOM).
 */
export function rfc5424(record: AuditRecord, origin: SyslogOrigin): string {
  const pri = FACILITY_LOG_AUDIT * 8 + (SEVERITY[record.outcome] ?? 5);
  const sd = `[${SD_ID} seq="${record.seq}" hash="${record.hash}" prevHash="${record.prevHash}" outcome="${sdValue(record.outcome)}" actor="${sdValue(record.actor)}"]`;
  return `<${pri}>1 ${record.ts} ${headerField(origin.hostname, 255)} ${headerField(origin.appName, 48)} - ${headerField(record.action, 32)} ${sd} ${BOM}${auditJsonLine(record)}`;
}

/** RFC 5425 / RFC 6587 octet counting: `MSG-LEN SP SYSLOG-MSG`, the length in bytes. */
export function octetCounted(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

/** PARAM-VALUE escaping: `"`, `\` and `]` are preceded by a backslash. */
function sdValue(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** Header fields are printable US-ASCII without spaces; anything else becomes `_`, empty becomes the NILVALUE. */
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? '-' : clean;
}
