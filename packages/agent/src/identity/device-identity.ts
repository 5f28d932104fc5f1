import { FleetwardError } from '@fleetward/protocol';
import type { AgentConfig } from '../config/agent-config.js';
import { checkCertificate, loadCredentials, saveCredentials, type DeviceCredentials } from './device-credentials.js';
import { softwareKeyStore, type DeviceKeyStore } from './device-key.js';
import { provisionDevice } from './provision-device.js';

/** Provisions the device by the configured method with a new key and saves what it got; returns the credentials as loaded back. */
export async function provisionAndSave(config: AgentConfig, store: DeviceKeyStore, caPem: string, onProvisioned: (serial: string) => void): Promise<DeviceCredentials> {
  if (config.provisioning === null) throw new FleetwardError('FW_ERR_CONFIG_INVALID', `the device has no certificate in ${config.stateDir} and no provisioning is configured`, { key: 'provisioning' });
  const key = await store.generate();
  const certPem = await provisionDevice(config, caPem, key);
  checkCertificate(certPem, key.publicKey, config.thing, caPem);
  await saveCredentials(config.stateDir, store, key, certPem);
  const credentials = await loadCredentials(config.stateDir, store, config.thing, caPem);
  if (credentials === null) throw new FleetwardError('FW_ERR_KEY_UNREADABLE', `the certificate just saved in ${config.stateDir} cannot be read back`);
  onProvisioned(credentials.certificate.serialNumber.toLowerCase());
  return credentials;
}

/** Software keys in the agent's folder, or keys in the configured PKCS#11 token. */
export async function deviceKeyStore(config: AgentConfig): Promise<DeviceKeyStore> {
  if (config.keyStorage.kind === 'software') return softwareKeyStore;
  const { Pkcs11KeyStore } = await import('./pkcs11-key-store.js');
  return Pkcs11KeyStore.open(config.thing, config.keyStorage);
}
