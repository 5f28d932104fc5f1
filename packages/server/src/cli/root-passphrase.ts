import { FleetwardError } from '@fleetward/protocol';

/** The passphrase of an offline root key: from the environment, never a flag (flags show in `ps`). */
export const ROOT_PASSPHRASE_ENV = 'FLEETWARD_ROOT_KEY_PASSPHRASE';

export function rootPassphrase(): string {
  const passphrase = process.env[ROOT_PASSPHRASE_ENV];
  if (passphrase === undefined || passphrase === '') throw new FleetwardError('FW_ERR_USAGE', `set ${ROOT_PASSPHRASE_ENV} to the passphrase of the offline root key`);
  return passphrase;
}
