import { X509Certificate } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import { PreparedQuery } from '../store/prepared-query.js';
import type { Store } from '../store/store.js';
import { serialOf } from '../identity/certificates.js';
import type { Groups } from '../identity/registry/groups.js';
import type { ThingState } from '../identity/registry/lifecycle.js';
import type { ThirdPartyCas } from '../identity/third-party-cas.js';
import type { VerifiedCertificate } from '../identity/verified-certificate.js';

/** Who a verified client certificate says is connecting, as the registry knows it now. */
export type DeviceIdentity = ThingIdentity | ClaimIdentity;

interface CertificateFacts {
  readonly serial: string;
  readonly caId: string;
  readonly certCn: string;
  readonly certIssuer: string;
}

/** A device certificate: the connection acts as its thing. */
export interface ThingIdentity extends CertificateFacts {
  readonly kind: 'device';
  readonly thing: string;
  readonly thingState: ThingState;
  readonly thingType: string | null;
  readonly attributes: Readonly<Record<string, string>>;
  /** The thing's groups and their ancestors. */
  readonly groups: readonly string[];
  readonly certificateStatus: 'active' | 'revoked';
  readonly mustRotate: boolean;
}

/** A claim certificate: the connection may only provision devices from its template. */
export interface ClaimIdentity extends CertificateFacts {
  readonly kind: 'claim';
  readonly template: string;
  readonly certificateStatus: 'active' | 'revoked';
}

/**
 * Finds the registry's record of a client certificate the TLS layer verified. A certificate of a
 * registered third-party CA that is not known yet registers its device just in time. Returns null
 * for a certificate Fleetward has no record of (it chained to a trusted CA, but was never issued
 * or registered: refuse it).
 */
export async function identify(deps: { readonly store: Store; readonly groups: Groups; readonly thirdPartyCas: ThirdPartyCas }, certificate: VerifiedCertificate, source: string): Promise<DeviceIdentity | null> {
  const { db } = deps.store;
  const external = await externalIssuer(deps.store, certificate);
  const serial = external === null ? serialOf(certificate) : `${external}:${serialOf(certificate)}`;
  let [row] = await certificateRow.run(db, serial);
  if (row === undefined && external !== null) {
    await deps.thirdPartyCas.justInTimeRegister(certificate.x509, source);
    [row] = await certificateRow.run(db, serial);
  }
  if (row === undefined) return null;
  const facts = { serial, caId: row.ca_id, certCn: row.subject_cn, certIssuer: (external === null ? await caSubject(db, row.ca_id) : certificate.issuer).split('\n').join(', '), certificateStatus: row.status as 'active' | 'revoked' };
  if (row.kind === 'claim') return { kind: 'claim', template: row.template ?? row.subject_cn, ...facts };
  if (row.thing_id === null || row.thing === null || row.state === null) throw new FleetwardError('FW_ERR_INTERNAL', `device certificate ${serial} has no thing`);
  const attributes = await thingAttributes.run(db, row.thing_id);
  const { effective } = await deps.groups.groupsOf(row.thing);
  return {
    kind: 'device',
    thing: row.thing,
    thingState: row.state as ThingState,
    thingType: row.type,
    attributes: Object.fromEntries(attributes.map((a) => [a.key, a.value])),
    groups: effective,
    mustRotate: row.must_rotate === 1,
    ...facts,
  };
}

// Prepared: admission runs these for every connect.
const certificateRow = new PreparedQuery((db, serial: string) =>
  db
    .selectFrom('certificates')
    .leftJoin('things', 'things.id', 'certificates.thing_id')
    .select(['certificates.ca_id', 'certificates.kind', 'certificates.template', 'certificates.subject_cn', 'certificates.status', 'certificates.must_rotate', 'certificates.thing_id', 'things.name as thing', 'things.state', 'things.type'])
    .where('certificates.serial', '=', serial),
);
const thingAttributes = new PreparedQuery((db, thingId: string) => db.selectFrom('thing_attributes').select(['key', 'value']).where('thing_id', '=', thingId));
const externalCas = new PreparedQuery((db) => db.selectFrom('certificate_authorities').select(['id', 'cert_pem']).where('role', '=', 'external').where('status', '=', 'active'));

/** CA certificates parsed once, by PEM. */
const parsed = new Map<string, X509Certificate>();

function parsedCa(pem: string): X509Certificate {
  let ca = parsed.get(pem);
  if (ca === undefined) {
    ca = new X509Certificate(pem);
    parsed.set(pem, ca);
  }
  return ca;
}

const caCertificate = new PreparedQuery((db, id: string) => db.selectFrom('certificate_authorities').select('cert_pem').where('id', '=', id));
/** Subjects of Fleetward's CAs by id (a CA's certificate never changes under its id). */
const caSubjects = new Map<string, string>();

/**
 * The issuer of a certificate Fleetward issued, as X509Certificate renders it: its CA's subject
 * (issuance copies the CA's subject DER into the issuer field), read without parsing the certificate.
 */
async function caSubject(db: Store['db'], caId: string): Promise<string> {
  let subject = caSubjects.get(caId);
  if (subject === undefined) {
    const [ca] = await caCertificate.run(db, caId);
    if (ca === undefined) throw new FleetwardError('FW_ERR_INTERNAL', `certificate authority ${caId} is not in the registry`);
    subject = parsedCa(ca.cert_pem).subject;
    caSubjects.set(caId, subject);
  }
  return subject;
}

/** The id of the registered third-party CA that issued the certificate, or null for Fleetward's own. */
async function externalIssuer(store: Store, certificate: VerifiedCertificate): Promise<string | null> {
  const cas = await externalCas.run(store.db);
  for (const ca of cas) {
    const issuer = parsedCa(ca.cert_pem);
    const { x509 } = certificate;
    if (x509.issuer === issuer.subject && x509.checkIssued(issuer) && x509.verify(issuer.publicKey)) return ca.id;
  }
  return null;
}
