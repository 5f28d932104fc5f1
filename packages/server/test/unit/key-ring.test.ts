import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/identity/key-ring.js';
import { refusalOf } from '../helpers/refusals.js';

const now = new Date('2026-11-25T12:00:00Z');

describe('key ring (sealing keys at rest)', () => {
  it('seals with AES-256-GCM under a key id and opens again (property)', () => {
    const ring = KeyRing.generate(now);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const sealed = ring.seal(bytes, 'test:property');
        expect(sealed.startsWith(`fwseal1.${ring.activeId}.`)).toBe(true);
        expect(ring.open(sealed, 'test:property').equals(Buffer.from(bytes))).toBe(true);
      }),
    );
  });

  it('never writes the plaintext and never seals the same way twice', () => {
    const ring = KeyRing.generate(now);
    const secret = Buffer.from('-----BEGIN PRIVATE KEY-----secret');
    const a = ring.seal(secret, 'tls:server');
    const b = ring.seal(secret, 'tls:server');
    expect(a).not.toBe(b);
    expect(a).not.toContain('PRIVATE');
    expect(Buffer.from(a.split('.')[3] as string, 'base64url').includes(secret)).toBe(false);
  });

  it('refuses a sealed secret that was modified, truncated, relabelled or sealed by another key ring', () => {
    const ring = KeyRing.generate(now);
    const sealed = ring.seal(Buffer.from('ca private key'), 'ca:root');
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3] as string, 'base64url');
    body[0] = (body[0] as number) ^ 0x01;
    const flipped = [...parts.slice(0, 3), body.toString('base64url')].join('.');
    expect(refusalOf(() => ring.open(flipped, 'ca:root')).code).toBe('FW_ERR_KEY_UNREADABLE');
    expect(refusalOf(() => ring.open(sealed.slice(0, 30), 'ca:root')).code).toBe('FW_ERR_KEY_UNREADABLE');
    expect(refusalOf(() => ring.open(sealed, 'ca:issuing')).code).toBe('FW_ERR_KEY_UNREADABLE');
    expect(refusalOf(() => KeyRing.generate(now).open(sealed, 'ca:root')).code).toBe('FW_ERR_KEY_UNREADABLE');
    expect(refusalOf(() => ring.open('not sealed at all', 'ca:root')).code).toBe('FW_ERR_KEY_UNREADABLE');
  });

  it('rotation: a new active key seals, old secrets still open until re-sealed, then the old key can go', () => {
    const ring = KeyRing.generate(now);
    const old = ring.seal(Buffer.from('k'), 'tls:server');
    const rotated = ring.withNewActiveKey(now);
    expect(rotated.activeId).not.toBe(ring.activeId);
    expect(rotated.open(old, 'tls:server').toString()).toBe('k');
    const resealed = rotated.reseal(old, 'tls:server');
    expect(resealed.split('.')[1]).toBe(rotated.activeId);
    const trimmed = rotated.withoutRetiredKeys();
    expect(trimmed.keyIds).toEqual([rotated.activeId]);
    expect(trimmed.open(resealed, 'tls:server').toString()).toBe('k');
    expect(refusalOf(() => trimmed.open(old, 'tls:server')).code).toBe('FW_ERR_KEY_UNREADABLE');
  });

  it('round-trips through its file form and refuses a corrupt file', () => {
    const ring = KeyRing.generate(now).withNewActiveKey(now);
    const restored = KeyRing.fromJSON(JSON.parse(JSON.stringify(ring)), 'kek.json');
    expect(restored.activeId).toBe(ring.activeId);
    expect(restored.keyIds).toEqual(ring.keyIds);
    const document = ring.toJSON();
    for (const corrupt of [null, {}, { ...document, version: 2 }, { ...document, active: 'ffffffffffffffff' }, { ...document, keys: [] }, { ...document, keys: [{ ...document.keys[0], key: 'c2hvcnQ=' }] }]) {
      expect(refusalOf(() => KeyRing.fromJSON(corrupt, 'kek.json')).code).toBe('FW_ERR_KEY_UNREADABLE');
    }
  });
});
