import { describe, expect, it } from 'vitest';
import { assessCredentials, type AuditSettings, type CertificateFacts } from '../../src/identity/credential-audit/checks.js';

const now = new Date('2026-11-25T12:00:00Z');
const DAY = 86_400_000;
const settings: AuditSettings = { now, expiryWarningDays: 3, caExpiryWarningDays: 90, unusedCertificateDays: 7, renewalWindowDays: 7 };
const at = (days: number) => new Date(now.getTime() + days * DAY).toISOString();

function certificate(overrides: Partial<CertificateFacts> = {}): CertificateFacts {
  return { serial: 'aa01', thing: 'dev-1', thingState: 'active', requireHardwareKey: false, keyFingerprint: 'k1', keyStorage: 'software', notAfter: at(20), createdAt: at(-10), lastUsedAt: at(-1), weakness: null, clientIds: ['dev-1'], ...overrides };
}
const kinds = (certificates: CertificateFacts[]) => assessCredentials(certificates, [], settings).map((f) => `${f.kind}:${f.severity}`);

describe('credential checks', () => {
  it('a used, sound certificate of an active thing far from expiry has no finding', () => {
    expect(kinds([certificate()])).toEqual([]);
  });

  it('expiry: only inside the warning window, not for expired ones (they no longer authenticate)', () => {
    expect(kinds([certificate({ notAfter: at(3) })])).toEqual(['certificate-expiring:medium']);
    expect(kinds([certificate({ notAfter: at(3.01) })])).toEqual([]);
    expect(kinds([certificate({ notAfter: at(-1) })])).toEqual([]);
  });

  it('never used: only once the grace period has passed since issuance', () => {
    expect(kinds([certificate({ lastUsedAt: null, createdAt: at(-6.9) })])).toEqual([]);
    expect(kinds([certificate({ lastUsedAt: null, createdAt: at(-7) })])).toEqual(['certificate-never-used:low']);
  });

  it('inactive things: decommissioned is high, suspended and quarantined medium', () => {
    expect(kinds([certificate({ thingState: 'decommissioned' })])).toEqual(['inactive-thing-certificate:high']);
    expect(kinds([certificate({ thingState: 'suspended' })])).toEqual(['inactive-thing-certificate:medium']);
    expect(kinds([certificate({ thingState: 'quarantined' })])).toEqual(['inactive-thing-certificate:medium']);
  });

  it('one key in certificates of two things is high for both; two certificates of one thing with one key is not shared', () => {
    const findings = assessCredentials([certificate({ serial: 'a', thing: 'x' }), certificate({ serial: 'b', thing: 'y' })], [], settings);
    expect(findings.map((f) => [f.kind, f.thing])).toEqual([['shared-key', 'x'], ['shared-key', 'y']]);
    expect(kinds([certificate({ serial: 'a', createdAt: at(-1) }), certificate({ serial: 'b', createdAt: at(-2) })])).toEqual([]);
  });

  it('two active certificates of a thing are fine during the rotation window, a finding after it', () => {
    expect(kinds([certificate({ serial: 'old', keyFingerprint: 'k1', createdAt: at(-30) }), certificate({ serial: 'new', keyFingerprint: 'k2', createdAt: at(-7) })])).toEqual([]);
    const late = assessCredentials([certificate({ serial: 'old', keyFingerprint: 'k1', createdAt: at(-30) }), certificate({ serial: 'new', keyFingerprint: 'k2', createdAt: at(-7.1) })], [], settings);
    expect(late.map((f) => [f.kind, f.serial])).toEqual([['multiple-active-certificates', 'new']]);
    expect(late[0]?.message).toContain('old');
  });

  it('hardware requirement: software and unknown storage fail it, pkcs11 and tpm meet it', () => {
    expect(kinds([certificate({ requireHardwareKey: true, keyStorage: 'software' })])).toEqual(['hardware-key-required:medium']);
    expect(kinds([certificate({ requireHardwareKey: true, keyStorage: 'unknown' })])).toEqual(['hardware-key-required:medium']);
    expect(kinds([certificate({ requireHardwareKey: true, keyStorage: 'pkcs11' })])).toEqual([]);
    expect(kinds([certificate({ requireHardwareKey: true, keyStorage: 'tpm' })])).toEqual([]);
  });

  it('CAs: Fleetward CAs close to expiry are high, third-party ones medium, far ones nothing', () => {
    const findings = assessCredentials([], [{ id: 'i', role: 'issuing', subject: 'CN=I', notAfter: at(89) }, { id: 'e', role: 'external', subject: 'CN=E', notAfter: at(-1) }, { id: 'r', role: 'root', subject: 'CN=R', notAfter: at(91) }], settings);
    expect(findings.map((f) => [f.caId, f.severity])).toEqual([['i', 'high'], ['e', 'medium']]);
    expect(findings[1]?.message).toContain('expired');
  });
});
