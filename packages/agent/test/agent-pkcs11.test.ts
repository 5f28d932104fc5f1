import { generateKeyPairSync } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetwardError } from '@fleetward/protocol';
import { FleetwardAgent } from '../src/agent.js';
import { csrFor } from '../../server/test/helpers/csr.js';
import { softHsm, SOFTHSM_MODULE, USER_PIN, type SoftHsm } from '../../server/test/helpers/softhsm.js';
import { startAgentNode, type AgentNode } from './helpers/agent-node.js';

const admin = { name: 'operator:test' };
let hsm: SoftHsm;
let n: AgentNode;

beforeAll(async () => {
  hsm = await softHsm(['device']);
  n = await startAgentNode();
  await n.t.node.context.identity.templates.create('secure', { namePattern: 'secure-[0-9]+' }, admin);
  const claimKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const claim = await n.t.node.context.identity.certificates.issue({ subject: 'secure', kind: 'claim', csr: csrFor('secure', claimKeys), via: 'operator', template: 'secure' }, admin);
  await writeFile(join(n.dir, 'claim.pem'), claim.certificatePem);
  await writeFile(join(n.dir, 'claim.key'), claimKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
  await writeFile(join(n.dir, 'wrong-pin'), 'not-the-pin\n', { mode: 0o600 });
});

afterAll(async () => {
  await n.close();
  await hsm.cleanup();
});

const provisioning = { method: 'claim-certificate', template: 'secure', claimCertFile: 'claim.pem', claimKeyFile: 'claim.key' };

describe('device key in a PKCS#11 token (SoftHSM2)', () => {
  // First: PKCS#11 logins are shared by every session of a process, so this runs before any good login.
  it('refuses a wrong PIN with a clear error instead of falling back to a software key', async () => {
    const keyStorage = { kind: 'pkcs11', module: SOFTHSM_MODULE, token: 'device', pinFile: join(n.dir, 'wrong-pin') };
    const error = await FleetwardAgent.start(n.config('secure-2', { provisioning, keyStorage })).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(FleetwardError);
    expect((error as FleetwardError).code).toBe('FW_ERR_KEY_UNREADABLE');
    await expect(readdir(join(n.dir, 'state-secure-2'))).resolves.not.toContain('device.key');
  });

  it('generates the key in the token, provisions, and does every TLS handshake with it there; renewal makes a new token key', async () => {
    const keyStorage = { kind: 'pkcs11', module: SOFTHSM_MODULE, token: 'device', pinFile: hsm.pinFile };
    const agent = await FleetwardAgent.start(n.config('secure-1', { provisioning, keyStorage }));
    try {
      const until = Date.now() + 10_000;
      while (!agent.online && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(agent.online).toBe(true);
      expect((await n.t.node.context.identity.certificates.get(agent.status().serial)).keyStorage).toBe('pkcs11');
      // The agent's folder holds a label, never key material.
      const stateDir = join(n.dir, 'state-secure-1');
      expect(await readdir(stateDir)).not.toContain('device.key');
      const label = await readFile(join(stateDir, 'device.p11'), 'utf8');
      expect(label).toMatch(/^fleetward-secure-1-/);
      expect(label).not.toContain(USER_PIN);

      const first = agent.status().serial;
      await agent.renewNow();
      const again = Date.now() + 10_000;
      while (!(agent.online && agent.status().serial !== first) && Date.now() < again) await new Promise((r) => setTimeout(r, 20));
      expect(agent.status().serial).not.toBe(first);
      expect(await readFile(join(stateDir, 'device.p11'), 'utf8')).not.toBe(label);
      await agent.publish('things/secure-1/telemetry', { ok: true });
      expect(await agent.drained(5_000)).toBe(true);
    } finally {
      await agent.stop();
    }
  });
});
