import { readFile } from 'node:fs/promises';
import { FleetwardError } from '@fleetward/protocol';
import type { AgentConfig } from '../config/agent-config.js';
import { provisionByClaim } from './claim-provisioning.js';
import { enrollWithToken } from './est-enrollment.js';
import type { DeviceKey } from './device-key.js';
import { readKeyFile, readSecretFile } from './key-file.js';

/** Gets the device its own certificate for `key` by the configured method; returns the certificate and its issuing CA. */
export async function provisionDevice(config: AgentConfig, caPem: string, key: DeviceKey): Promise<string> {
  const provisioning = config.provisioning;
  if (provisioning === null) throw new FleetwardError('FW_ERR_CONFIG_INVALID', 'no provisioning is configured', { key: 'provisioning' });
  if (provisioning.method === 'claim-certificate') {
    const claimKey = await readKeyFile(provisioning.claimKeyFile);
    const claimCertPem = await readFile(provisioning.claimCertFile, 'utf8');
    const answer = await provisionByClaim(
      { mqttUrl: config.mqttUrl, caPem, template: provisioning.template, claimKeyPem: claimKey.pem, claimCertPem, thing: config.thing, parameters: provisioning.parameters },
      key,
    );
    return answer.certificatePem + firstCertificate(answer.chainPem);
  }
  const token = (await readSecretFile(provisioning.tokenFile, 'enrollment token file')).trim();
  return enrollWithToken({ estUrl: provisioning.estUrl, caPem, template: provisioning.template, token, thing: config.thing }, key);
}

/** The issuing CA: the first certificate of the chain the platform returns. */
export function firstCertificate(chainPem: string): string {
  return /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(chainPem)?.[0] ?? '';
}
