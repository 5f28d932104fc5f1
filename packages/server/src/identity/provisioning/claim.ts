import type { X509Certificate } from 'node:crypto';
import { FleetwardError } from '@fleetward/protocol';
import type { AuditLog } from '../../audit/audit-log.js';
import { actorFields } from '../../audit/audit-events.js';
import type { Clock } from '../../clock.js';
import type { JsonValue } from '../../json.js';
import type { Store } from '../../store/store.js';
import type { KeyStorage } from '../certificate-repository.js';
import { codeOf, serialOf, type Certificates, type IssuedCertificate } from '../certificates.js';
import type { IdentityEvents } from '../events.js';
import { parseCertificateRequest } from '../pki/csr.js';
import { thingName } from '../registry/names.js';
import type { Things } from '../registry/things.js';
import { denied, type EnrollmentTokens } from './enrollment-tokens.js';
import { wholeMatch, type ProvisioningTemplates, type TemplatePolicies } from './templates.js';

/** What a device proves it may provision with: a template's enrollment token or claim certificate. */
export type ClaimCredential =
  | { readonly kind: 'token'; readonly token: string }
  /** A certificate the TLS layer verified against Fleetward's CAs. */
  | { readonly kind: 'certificate'; readonly certificate: X509Certificate };

export interface ClaimRequest {
  readonly template: string;
  readonly credential: ClaimCredential;
  readonly csr: Buffer | string;
  /** Values the template asks for; they become attributes. */
  readonly parameters?: Readonly<Record<string, string>>;
  readonly keyStorage?: KeyStorage;
  readonly attestation?: Readonly<Record<string, JsonValue>>;
  /** The device's network address. */
  readonly source?: string;
  /** How the request came: EST or MQTT. */
  readonly via: 'est' | 'claim';
}

export interface ClaimDependencies {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly templates: ProvisioningTemplates;
  readonly tokens: EnrollmentTokens;
  readonly things: Things;
  readonly certificates: Certificates;
  readonly events: IdentityEvents;
  readonly templatePolicies: TemplatePolicies;
}

/**
 * Fleet provisioning by claim: a device holding a template's shared claim credential trades the CSR
 * of its own, freshly made key for its own identity. The thing is created from the template and
 * its certificate issued, and a token use is spent, all in one transaction; every refusal is
 * audited and changes nothing.
 */
export class ClaimProvisioning {
  readonly #deps: ClaimDependencies;

  constructor(deps: ClaimDependencies) {
    this.#deps = deps;
  }

  async claim(request: ClaimRequest): Promise<{ readonly thing: string; readonly certificate: IssuedCertificate }> {
    const actor = { name: `claim:${request.template.slice(0, 128)}`, ...(request.source !== undefined && { source: request.source }) };
    let thing = '(unknown)';
    try {
      const template = await this.#deps.templates.get(request.template).catch((error: unknown) => {
        throw codeOf(error) === 'FW_ERR_NOT_FOUND' ? denied('other-template') : error;
      });
      if (!template.enabled) throw denied('template-disabled');
      if (request.credential.kind === 'certificate') await this.#checkClaimCertificate(request.credential.certificate, template.name);
      const csrName = parseCertificateRequest(request.csr).subjectCommonName ?? '';
      thing = thingName(csrName);
      if (!wholeMatch(template.namePattern, 'namePattern').test(thing)) {
        throw new FleetwardError('FW_ERR_NAME_MISMATCH', `the name ${thing} does not fit template ${template.name}`, { template: template.name, pattern: template.namePattern });
      }
      const parameters = checkParameters(template.parameters, request.parameters ?? {});
      const prepared = await this.#deps.certificates.prepare({
        subject: thing,
        kind: 'device',
        csr: request.csr,
        via: request.via,
        template: template.name,
        ...(request.keyStorage && { keyStorage: request.keyStorage }),
        ...(request.attestation && { attestation: request.attestation }),
      });
      const name = thing;
      const issued = await this.#deps.store.db.transaction().execute(async (trx) => {
        const credential: Record<string, string> = request.credential.kind === 'token' ? { token: await this.#deps.tokens.consumeWithin(trx, request.credential.token, template.name) } : { claimCertificate: serialOf(request.credential.certificate) };
        await this.#deps.things.createWithin(
          trx,
          { name: thingName(name), state: 'pending', groups: template.groups, attributes: { ...template.attributes, ...parameters }, ...(template.thingType !== null && { type: template.thingType }) },
          actor,
        );
        await this.#deps.templatePolicies.attachWithin(trx, name, template.policies, actor);
        const { results } = await this.#deps.certificates.commitWithin(trx, [{ prepared, actor }]);
        const result = results[0];
        if (result instanceof FleetwardError || result === undefined) throw result ?? new FleetwardError('FW_ERR_INTERNAL', 'no issuance result');
        await this.#deps.audit.recordWithin(trx, [{ ...actorFields(actor), action: 'provisioning.claim', outcome: 'success', target: `thing:${name}`, details: { template: template.name, via: request.via, ...credential, serial: result.serial } }]);
        return result;
      });
      this.#deps.events.emit('thingStateChanged', { thing: name, from: 'pending', to: 'active' });
      return { thing: name, certificate: issued };
    } catch (error) {
      const details: Record<string, string> = error instanceof FleetwardError && typeof error.details.reason === 'string' ? { reason: error.details.reason } : {};
      await this.#deps.audit.record({ ...actorFields(actor), action: 'provisioning.claim', outcome: 'denied', target: `thing:${thing.slice(0, 128)}`, details: { template: request.template.slice(0, 128), via: request.via, code: codeOf(error), ...details } });
      throw error;
    }
  }

  /** A claim certificate allows provisioning for its own template only, and only while active. */
  async #checkClaimCertificate(certificate: X509Certificate, template: string): Promise<void> {
    const info = await this.#deps.certificates.get(serialOf(certificate)).catch(() => null);
    if (info === null || info.kind !== 'claim') throw denied('not-a-claim-certificate');
    if (info.template !== template) throw denied('other-template');
    if (info.status !== 'active') throw new FleetwardError('FW_ERR_CERT_REVOKED', 'the claim certificate is revoked', { serial: info.serial });
  }
}

function checkParameters(expected: Readonly<Record<string, string>>, given: Readonly<Record<string, string>>): Record<string, string> {
  for (const key of Object.keys(given)) {
    if (!(key in expected)) throw new FleetwardError('FW_ERR_VALIDATION', `parameter ${key} is not one the template takes`, { field: `parameters.${key}` });
  }
  for (const [key, pattern] of Object.entries(expected)) {
    const value = given[key];
    if (value === undefined) throw new FleetwardError('FW_ERR_VALIDATION', `parameter ${key} is missing`, { field: `parameters.${key}` });
    if (!wholeMatch(pattern, `parameters.${key}`).test(value)) throw new FleetwardError('FW_ERR_VALIDATION', `parameter ${key} does not match its pattern`, { field: `parameters.${key}` });
  }
  return { ...given };
}

