import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
// Distinctive, so a test can tell it never reached a log.
export const USER_PIN = 'hsm-pin-7c2e91';

export interface SoftHsm {
  readonly module: string;
  readonly dir: string;
  /** A 0600 file holding the user PIN, as a node is configured with. */
  readonly pinFile: string;
  cleanup(): Promise<void>;
}

/**
 * A real SoftHSM2 with fresh tokens under a temporary folder. SoftHSM reads SOFTHSM2_CONF once per
 * process, so a test file calls this once, before anything loads the module, with every label it needs.
 */
export async function softHsm(labels: readonly string[]): Promise<SoftHsm> {
  const dir = await mkdtemp(join(tmpdir(), 'fw-softhsm-'));
  await mkdir(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  for (const label of labels) {
    await run('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', '1234', '--pin', USER_PIN], { env: { ...process.env, SOFTHSM2_CONF: conf } });
  }
  const pinFile = join(dir, 'pin');
  await writeFile(pinFile, `${USER_PIN}\n`, { mode: 0o600 });
  return { module: SOFTHSM_MODULE, dir, pinFile, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The FLEETWARD_* settings that put new CA keys in the token. */
export function pkcs11Env(hsm: SoftHsm, tokenLabel: string): Record<string, string> {
  return { FLEETWARD_PKI_KEY_CUSTODY: 'pkcs11', FLEETWARD_PKI_PKCS11_MODULE: hsm.module, FLEETWARD_PKI_PKCS11_TOKEN_LABEL: tokenLabel, FLEETWARD_PKI_PKCS11_PIN_FILE: hsm.pinFile };
}
