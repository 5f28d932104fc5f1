import { randomBytes } from 'node:crypto';
import mqtt from 'mqtt';
import { FleetwardError, isErrorCode, Topics, type CertificateAccepted, type ProvisioningRequest, type RequestRejected } from '@fleetward/protocol';
import { subscribeOne, withTimeout } from '../session/mqtt-requests.js';
import { clientTlsContext, mqttTlsOptions, secureUrl } from '../session/tls-options.js';
import { certificateRequestPem } from './certificate-request.js';
import type { DeviceKey } from './device-key.js';

export interface ClaimRequest {
  readonly mqttUrl: string;
  readonly caPem: string;
  readonly template: string;
  readonly claimKeyPem: string;
  readonly claimCertPem: string;
  readonly thing: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

/**
 * Provisioning by claim over MQTT: connected with the batch's claim certificate, the device sends a
 * CSR for its own key and receives its own certificate (answers carry the client token, so many
 * devices can share the claim certificate). A refusal is a FleetwardError with the platform's code.
 */
export async function provisionByClaim(request: ClaimRequest, key: DeviceKey): Promise<CertificateAccepted> {
  const clientToken = randomBytes(12).toString('hex');
  const csr = await certificateRequestPem(request.thing, key);
  const client = await mqtt.connectAsync(secureUrl(request.mqttUrl), mqttTlsOptions(clientTlsContext({ key: { pem: request.claimKeyPem }, certPem: request.claimCertPem, caPem: request.caPem }), `claim-${clientToken}`, { clean: true }));
  try {
    const answer = new Promise<CertificateAccepted>((resolve, reject) => {
      client.on('message', (topic, payload) => {
        let message: (CertificateAccepted | RequestRejected) & { clientToken?: string };
        try {
          message = JSON.parse(payload.toString()) as CertificateAccepted | RequestRejected;
        } catch {
          return;
        }
        if (message.clientToken !== clientToken) return;
        if (topic === Topics.provisioningAccepted(request.template)) resolve(message as CertificateAccepted);
        else {
          const rejected = message as RequestRejected;
          reject(new FleetwardError(isErrorCode(rejected.code) ? rejected.code : 'FW_ERR_ENROLLMENT_DENIED', `provisioning refused: ${rejected.message}`, { code: rejected.code }));
        }
      });
    });
    for (const topic of [Topics.provisioningAccepted(request.template), Topics.provisioningRejected(request.template)]) await subscribeOne(client, topic);
    const body: ProvisioningRequest = { csr, parameters: request.parameters, keyStorage: key.storage, clientToken };
    await client.publishAsync(Topics.provisioningRequest(request.template), JSON.stringify(body), { qos: 1 });
    return await withTimeout(answer, request.timeoutMs ?? 30_000, 'the provisioning answer did not arrive in time');
  } finally {
    await client.endAsync(true);
  }
}
