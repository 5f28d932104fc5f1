import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientTokenOf, FleetwardError, parseProvisioningRequest, parseRenewalRequest, parseReservedRequest, Topics } from '../src/index.js';

const CSR = '-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n';
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const name = fc.stringMatching(/^[A-Za-z0-9:_-]{1,128}$/);

/** The field a refusal names, or 'accepted'. Anything but a FleetwardError FW_ERR_VALIDATION is a bug. */
function outcome(parse: () => unknown): string {
  try {
    parse();
    return 'accepted';
  } catch (error) {
    if (error instanceof FleetwardError && error.code === 'FW_ERR_VALIDATION') return typeof error.details.field === 'string' ? error.details.field : '';
    throw error;
  }
}

describe('reserved topics', () => {
  it('parses exactly the topics the builders make, for every valid name', () => {
    fc.assert(
      fc.property(name, (n) => {
        expect(parseReservedRequest(Topics.provisioningRequest(n))).toEqual({ kind: 'provisioning', template: n });
        expect(parseReservedRequest(Topics.renewRequest(n))).toEqual({ kind: 'renewal', thing: n });
        for (const answer of [Topics.provisioningAccepted(n), Topics.renewAccepted(n), Topics.renewRequired(n), Topics.inventory(n), Topics.metrics(n)]) expect(parseReservedRequest(answer)).toBeNull();
      }),
    );
  });

  it('never takes another topic for a request: wildcards, extra or missing levels, names outside the alphabet', () => {
    for (const topic of ['$fw/provisioning/+/request', '$fw/provisioning/#', '$fw/things/a/cert/renew/request/x', '$fw/things//cert/renew/request', 'fw/things/a/cert/renew/request', '$fw/things/a b/cert/renew/request', '$fw/provisioning/a/b/request']) {
      expect(parseReservedRequest(topic), topic).toBeNull();
    }
    fc.assert(fc.property(fc.string({ maxLength: 200 }), (topic) => {
      const parsed = parseReservedRequest(topic);
      if (parsed !== null) expect([Topics.provisioningRequest(parsed.kind === 'provisioning' ? parsed.template : ''), Topics.renewRequest(parsed.kind === 'renewal' ? parsed.thing : '')]).toContain(topic);
    }));
  });
});

describe('provisioning and renewal requests', () => {
  it('accepts a well-formed request and returns only its fields', () => {
    expect(parseProvisioningRequest(encode({ csr: CSR, parameters: { serial: 'AB12' }, keyStorage: 'tpm', clientToken: 'abc' }))).toEqual({ csr: CSR, parameters: { serial: 'AB12' }, keyStorage: 'tpm', clientToken: 'abc' });
    expect(parseRenewalRequest(encode({ csr: CSR }))).toEqual({ csr: CSR });
  });

  it('refuses each bad input naming the field: not JSON, not an object, unknown field, wrong types, oversized', () => {
    const cases: [unknown, string][] = [
      [{ csr: CSR, admin: true }, 'admin'],
      [{ csr: 42 }, 'csr'],
      [{ csr: 'not a csr' }, 'csr'],
      [{}, 'csr'],
      [{ csr: CSR, keyStorage: 'floppy' }, 'keyStorage'],
      [{ csr: CSR, clientToken: 'has space' }, 'clientToken'],
      [{ csr: CSR, parameters: { a: 1 } }, 'parameters'],
      [[CSR], ''],
      ['csr', ''],
    ];
    for (const [input, field] of cases) expect(outcome(() => parseProvisioningRequest(encode(input))), JSON.stringify(input)).toContain(field);
    expect(outcome(() => parseRenewalRequest(new TextEncoder().encode('{"csr":')))).toBe('');
    expect(outcome(() => parseRenewalRequest(new Uint8Array([0x7b, 0xff, 0x7d])))).toBe('');
    expect(outcome(() => parseRenewalRequest(encode({ csr: CSR, attestation: { x: 'y'.repeat(20_000) } })))).toBe('');
  });

  it('any payload either parses or is refused with FW_ERR_VALIDATION (never another error, never a crash)', () => {
    const payloads = fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      fc.jsonValue({ maxDepth: 4 }).map(encode),
      fc.record({ csr: fc.oneof(fc.constant(CSR), fc.string()), keyStorage: fc.string(), clientToken: fc.string(), parameters: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 1 })) }, { requiredKeys: [] }).map(encode),
    );
    fc.assert(
      fc.property(payloads, (payload) => {
        outcome(() => parseProvisioningRequest(payload));
        outcome(() => parseRenewalRequest(payload));
        const token = clientTokenOf(payload);
        if (token !== undefined) expect(token).toMatch(/^[\x21-\x7e]{1,64}$/);
      }),
      { numRuns: 500 },
    );
  });
});
