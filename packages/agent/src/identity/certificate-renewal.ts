import { randomBytes, type X509Certificate } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { FleetwardError, isErrorCode, Topics, type CertificateAccepted, type RenewalRequest, type RequestRejected } from '@fleetward/protocol';
import { withTimeout } from '../session/mqtt-requests.js';
import { certificateRequestPem } from './certificate-request.js';
import type { DeviceKey } from './device-key.js';

/** True once less than `atRemaining` of the certificate's lifetime is left (or it has expired). */
export function renewalDue(certificate: Pick<X509Certificate, 'validFrom' | 'validTo'>, now: Date, atRemaining: number): boolean {
  const from = Date.parse(certificate.validFrom);
  const to = Date.parse(certificate.validTo);
  return to - now.getTime() < (to - from) * atRemaining;
}

/** Answers to the device's own renewal requests, matched by client token (the subscription is the agent's). */
export class RenewalAnswers {
  readonly #pending = new Map<string, { resolve(answer: CertificateAccepted): void; reject(error: Error): void }>();

  expect(clientToken: string): Promise<CertificateAccepted> {
    return new Promise((resolve, reject) => this.#pending.set(clientToken, { resolve, reject }));
  }

  forget(clientToken: string): void {
    this.#pending.delete(clientToken);
  }

  /** Handles a message on `.../cert/renew/accepted|rejected`; anything not awaited is ignored. */
  receive(thing: string, topic: string, payload: Buffer): void {
    let message: (CertificateAccepted | RequestRejected) & { clientToken?: string };
    try {
      message = JSON.parse(payload.toString()) as typeof message;
    } catch {
      return;
    }
    const pending = message.clientToken === undefined ? undefined : this.#pending.get(message.clientToken);
    if (pending === undefined || message.clientToken === undefined) return;
    this.#pending.delete(message.clientToken);
    if (topic === Topics.renewAccepted(thing)) pending.resolve(message as CertificateAccepted);
    else {
      const rejected = message as RequestRejected;
      pending.reject(new FleetwardError(isErrorCode(rejected.code) ? rejected.code : 'FW_ERR_FORBIDDEN', `renewal refused: ${rejected.message}`, { code: rejected.code }));
    }
  }
}

/** Asks the gateway for a certificate for a new key (the old key is never reused). */
export async function requestRenewal(client: MqttClient, thing: string, newKey: DeviceKey, answers: RenewalAnswers, timeoutMs = 30_000): Promise<CertificateAccepted> {
  const clientToken = randomBytes(12).toString('hex');
  const request: RenewalRequest = { csr: await certificateRequestPem(thing, newKey), keyStorage: newKey.storage, clientToken };
  const answer = answers.expect(clientToken);
  try {
    await client.publishAsync(Topics.renewRequest(thing), JSON.stringify(request), { qos: 1 });
    return await withTimeout(answer, timeoutMs, 'the renewal answer did not arrive in time');
  } finally {
    answers.forget(clientToken);
  }
}
