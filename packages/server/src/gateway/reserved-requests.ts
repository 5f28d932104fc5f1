import {
  clientTokenOf,
  deviceReportKind,
  FleetwardError,
  parseDeviceMetrics,
  parseInventory,
  parseJobUpdate,
  parseProvisioningRequest,
  parseRenewalRequest,
  Topics,
  type CertificateAccepted,
  type JobUpdate,
  type JobUpdateAccepted,
  type PendingJobs,
  type RequestRejected,
  type ReservedRequest,
  type SealingKey,
} from '@fleetward/protocol';
import type { DataIngest } from '../data/data-ingest.js';
import { deviceContractsFor } from '../data/device-contracts-view.js';
import type { Certificates, IssuedCertificate } from '../identity/certificates.js';
import type { ClaimProvisioning } from '../identity/provisioning/claim.js';
import type { DeviceIdentity, ThingIdentity } from './device-identity.js';
import type { VerifiedCertificate } from '../identity/verified-certificate.js';

export interface ReservedRequestServices {
  readonly claims: ClaimProvisioning;
  readonly certificates: Certificates;
  /** The backend's sealing key, which devices seal data to (data/sealing-keys.ts). */
  readonly sealing: { current(): Promise<SealingKey> };
  /** The data contracts in force, which devices apply before sending (data/device-contracts-view.ts). */
  readonly data: { readonly ingest: Pick<DataIngest, 'contracts'> };
  /** Update jobs (rule 4): what a device should install, and its reports of each step. */
  readonly jobs: UpdateJobs;
  /** Told about answers that are not a refusal of bad input: failures of our own. */
  readonly onFailure: (error: unknown) => void;
}

/** The deployments' side of the job protocol. */
export interface UpdateJobs {
  pendingJobs(thing: string, clientToken?: string): Promise<PendingJobs>;
  /** Records a device's report of its own job; answers with the state recorded (refusals are FleetwardErrors). */
  report(thing: string, jobId: string, update: JobUpdate): Promise<JobUpdateAccepted>;
}

/** An answer for the one client that asked. */
export interface Reply {
  readonly topic: string;
  readonly payload: Buffer;
}

/**
 * Answers the requests devices send on reserved topics: provisioning by claim (a claim certificate
 * trades a device's CSR for its own certificate) and certificate renewal. Every request gets an
 * answer on `.../accepted` or `.../rejected`, with a stable error code when refused.
 */
export async function answerReservedRequest(services: ReservedRequestServices, request: ReservedRequest, identity: DeviceIdentity, certificate: VerifiedCertificate, payload: Buffer, source: string): Promise<Reply> {
  const clientToken = clientTokenOf(payload);
  if (request.kind === 'sealing-key') return forOwnThing(services, request.thing, identity, [Topics.sealingKey, Topics.sealingKeyRejected], () => services.sealing.current());
  if (request.kind === 'contracts') return forOwnThing(services, request.thing, identity, [Topics.contracts, Topics.contractsRejected], (own) => deviceContractsFor(services.data.ingest.contracts, own.thing, own.thingType));
  if (request.kind === 'jobs') {
    return forOwnThing(services, request.thing, identity, [Topics.jobs, Topics.jobsRejected], (own) => services.jobs.pendingJobs(own.thing, clientToken), clientToken);
  }
  if (request.kind === 'job-update') {
    const { jobId } = request;
    const answers = [(thing: string) => Topics.jobUpdateAccepted(thing, jobId), (thing: string) => Topics.jobUpdateRejected(thing, jobId)] as const;
    return forOwnThing(services, request.thing, identity, answers, (own) => services.jobs.report(own.thing, jobId, parseJobUpdate(payload)), clientToken);
  }
  const [accepted, rejected] = request.kind === 'provisioning' ? [Topics.provisioningAccepted(request.template), Topics.provisioningRejected(request.template)] : [Topics.renewAccepted(request.thing), Topics.renewRejected(request.thing)];
  try {
    const issued = request.kind === 'provisioning' ? await provision(services, request.template, identity, certificate, payload, source) : await renew(services, request.thing, identity, certificate, payload, source);
    const answer: CertificateAccepted = { thing: issued.thing, serial: issued.certificate.serial, certificatePem: issued.certificate.certificatePem, chainPem: issued.certificate.chainPem, notAfter: issued.certificate.notAfter, ...(clientToken !== undefined && { clientToken }) };
    return { topic: accepted, payload: Buffer.from(JSON.stringify(answer)) };
  } catch (error) {
    const known = error instanceof FleetwardError;
    if (!known) services.onFailure(error);
    const answer: RequestRejected = { code: known ? error.code : 'FW_ERR_INTERNAL', message: known ? error.message : 'the request could not be processed', ...(clientToken !== undefined && { clientToken }) };
    return { topic: rejected, payload: Buffer.from(JSON.stringify(answer)) };
  }
}

/** An answer about the asking device's own namespace (the sealing key, its contracts): a thing asks only for itself. */
async function forOwnThing(
  services: ReservedRequestServices,
  thing: string,
  identity: DeviceIdentity,
  [answered, rejected]: readonly [(thing: string) => string, (thing: string) => string],
  answer: (own: ThingIdentity) => unknown,
  clientToken?: string,
): Promise<Reply> {
  try {
    if (identity.kind !== 'device' || identity.thing !== thing) throw new FleetwardError('FW_ERR_FORBIDDEN', 'a device asks only about its own topics');
    return { topic: answered(thing), payload: Buffer.from(JSON.stringify(await answer(identity))) };
  } catch (error) {
    const known = error instanceof FleetwardError;
    if (!known) services.onFailure(error);
    const refusal: RequestRejected = { code: known ? error.code : 'FW_ERR_INTERNAL', message: known ? error.message : 'the request could not be processed', ...(clientToken !== undefined && { clientToken }) };
    return { topic: rejected(thing), payload: Buffer.from(JSON.stringify(refusal)) };
  }
}

/**
 * Checks a device's own report (`$fw/things/{thing}/metrics`, `.../inventory`) with the schema the
 * agent builds it from: a report the monitoring could not read is refused at the door. Returns why, or null.
 */
export function deviceReportProblem(topic: string, payload: Buffer): string | null {
  const kind = deviceReportKind(topic);
  if (kind === null) return null;
  try {
    if (kind === 'metrics') parseDeviceMetrics(payload);
    else parseInventory(payload);
    return null;
  } catch (error) {
    return error instanceof FleetwardError ? error.message : `the ${kind} report is invalid`;
  }
}

async function provision(services: ReservedRequestServices, template: string, identity: DeviceIdentity, certificate: VerifiedCertificate, payload: Buffer, source: string): Promise<{ thing: string; certificate: IssuedCertificate }> {
  if (identity.kind !== 'claim' || identity.template !== template) throw new FleetwardError('FW_ERR_ENROLLMENT_DENIED', 'only a claim certificate of this template may provision from it', { reason: 'other-template' });
  const request = parseProvisioningRequest(payload);
  return services.claims.claim({
    template,
    credential: { kind: 'certificate', certificate: certificate.x509 },
    csr: request.csr,
    via: 'claim',
    source,
    ...(request.parameters && { parameters: request.parameters }),
    ...(request.keyStorage && { keyStorage: request.keyStorage }),
    ...(request.attestation && { attestation: request.attestation }),
  });
}

async function renew(services: ReservedRequestServices, thing: string, identity: DeviceIdentity, certificate: VerifiedCertificate, payload: Buffer, source: string): Promise<{ thing: string; certificate: IssuedCertificate }> {
  if (identity.kind !== 'device' || identity.thing !== thing) throw new FleetwardError('FW_ERR_FORBIDDEN', 'a device renews only its own certificate');
  const request = parseRenewalRequest(payload);
  const issued = await services.certificates.renew({
    current: certificate.x509,
    csr: request.csr,
    via: 'renewal',
    source,
    ...(request.keyStorage && { keyStorage: request.keyStorage }),
    ...(request.attestation && { attestation: request.attestation }),
  });
  return { thing, certificate: issued };
}
