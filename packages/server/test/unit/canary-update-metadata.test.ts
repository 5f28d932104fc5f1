import { describe, expect, it } from 'vitest';
import { attackUpdateMetadata } from '../../src/health/canary-attacks.js';
import { generateTufKey, addSignatures, privateKeySigner } from '../../src/updates/tuf/keys.js';
import { proposeRoot, proposeTargets } from '../../src/updates/tuf/repository-metadata.js';

// Rule 6: the tampered-update canary. The one configuration that would let tampered targets verify,
// a root whose targets role needs no signature (threshold 0), cannot be put in force: Fleetward's
// root workflow refuses to propose it, and a root edited and signed by hand is refused when read,
// so the canary's attack fails loudly (a check error, never "held").

const now = new Date('2026-12-04T12:00:00Z');
const expires = new Date(now.getTime() + 86_400_000);

async function repositoryWith(targetsThreshold: number) {
  const key = generateTufKey();
  const root = proposeRoot(null, { rootKeys: [key.publicKey], rootThreshold: 1, targetsKeys: [key.publicKey], targetsThreshold: 1, snapshotKey: key.publicKey, timestampKey: key.publicKey, expires }).toJSON() as {
    signed: { roles: { targets: { threshold: number } } };
    signatures: { keyid: string; sig: string }[];
  };
  root.signed.roles.targets.threshold = targetsThreshold;
  const rootJson = await addSignatures(root, [privateKeySigner(key.privateKeyPem)]);
  const targets = await addSignatures(proposeTargets(null, [], expires).toJSON() as { signed: unknown; signatures: { keyid: string; sig: string }[] }, [privateKeySigner(key.privateKeyPem)]);
  const files: Record<string, Buffer> = { '1.root.json': Buffer.from(JSON.stringify(rootJson)), '1.targets.json': Buffer.from(JSON.stringify(targets)) };
  return { status: () => Promise.resolve({ root: { version: 1 }, targets: { version: 1 } }), metadataFile: (name: string) => Promise.resolve(files[name] ?? null) };
}

describe('tampered update metadata canary', () => {
  it('holds when the root in force requires the targets signature', async () => {
    expect(await attackUpdateMetadata(await repositoryWith(1), now)).toMatchObject({ status: 'held', detail: expect.stringMatching(/^targets v1 in force with one byte of its signed expiry flipped was refused/) });
  });

  it('fail/a root signed by hand with a targets threshold of 0 is refused when read: the attack errors, it never reports held', async () => {
    await expect(attackUpdateMetadata(await repositoryWith(0), now)).rejects.toMatchObject({ code: 'FW_ERR_VALIDATION', message: expect.stringMatching(/threshold must be at least 1/) });
  });
});
