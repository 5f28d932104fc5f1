import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canaries, type CanaryDependencies } from '../../src/health/canaries.js';
import { CanaryIdentities } from '../../src/health/canary-identities.js';
import { CONTROLS, type ControlName, type ControlsReport } from '../../src/health/controls.js';
import { flipExpiryByte } from '../../src/health/canary-attacks.js';
import { parseThrottleSettings } from '../../src/access/throttling/throttle-settings.js';
import { clockFrom } from '../../src/clock.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';
import { addArtifact, publishTargets, setUpRepository } from '../helpers/update-repository.js';

/**
 * Rule 6 end to end: the canaries attack a real node's real listeners over TLS. Every control
 * holds on a correctly configured node, and each canary is proven able to fail: the control is
 * broken on purpose (a listener without client-certificate requirement or without TLS, a policy
 * that reaches another thing, a stale CRL, a tampered audit row) and the canary must say so.
 */
describe('canaries (rule 6)', () => {
  let t: TestNode;
  let endpoints: { mqttPort: number; websocketPort: null; apiUrl: string };
  let identities: CanaryIdentities;

  const canaries = (overrides: Partial<CanaryDependencies> = {}, at: Partial<typeof endpoints> = {}): Canaries => {
    const c = t.node.context;
    const built = new Canaries({ minIntervalMs: 0, config: c.config, clock: c.clock, logger: c.logger, metrics: c.metrics, audit: c.audit, identities, cas: c.identity.cas, certificates: c.identity.certificates, repository: c.updates.repository, ...overrides });
    built.setEndpoints({ ...endpoints, ...at });
    return built;
  };
  const result = (report: ControlsReport, control: ControlName) => {
    const found = report.controls.find((c) => c.control === control);
    if (found === undefined) throw new Error(`no result for ${control}`);
    return found;
  };

  beforeAll(async () => {
    // The production default: a publish no data contract covers is refused, so a policy slip must be told apart from that refusal.
    // The canaries run here a dozen times in seconds (every 5 minutes in production): the canary's connect burst is raised to match.
    t = await startTestNode('sqlite', { env: { FLEETWARD_HEALTH_CANARIES: 'on', FLEETWARD_DATA_UNMATCHED_TOPICS: 'refuse', FLEETWARD_LIMITS_CONNECT_BURST_PER_THING: '50', FLEETWARD_LIMITS_FLAPPING_MAX_CONNECTS: '100' } });
    const { apiUrl, mqttUrl } = await t.node.listen();
    endpoints = { mqttPort: Number(new URL(mqttUrl).port), websocketPort: null, apiUrl };
    const c = t.node.context;
    identities = new CanaryIdentities({ home: c.layout.root, keyRing: c.keyRing, clock: c.clock, things: c.identity.things, certificates: c.identity.certificates });
  }, 30_000);
  afterAll(() => t?.close());

  it('ok/every control holds on a correctly configured node, each with what it saw', async () => {
    const checker = canaries();
    expect(checker.readiness()).toEqual({ ok: true, detail: 'security controls not checked yet' });
    const report = await checker.run();
    const { canary, peer, revoked } = await identities.ensure();
    expect(report.controls.map((c) => c.control)).toEqual([...CONTROLS]);
    expect(report.controls.filter((c) => c.status !== 'held').map((c) => `${c.control}: ${c.status}: ${c.detail}`)).toEqual(['tampered-update-rejected: not-applicable: no TUF root is set up: updates are not configured']);
    expect(report.held).toBe(true);
    expect(result(report, 'plaintext-refused').detail).toMatch(new RegExp(`port ${endpoints.mqttPort}: no CONNACK .*; no plaintext listener is configured`));
    // TLS 1.3: the server's alert may arrive, or be lost in the reset that follows it; either way no CONNACK came.
    const refusedAtTls = (alert: string) => new RegExp(`refused (at the TLS handshake \\(TLS alert "${alert}"\\)|before any CONNACK \\(connection closed (without a CONNACK|during the TLS handshake)\\)|before any CONNACK \\(ECONNRESET.*\\))$`);
    expect(result(report, 'client-certificate-required').detail).toMatch(refusedAtTls('(certificate required|handshake failure)'));
    expect(result(report, 'unknown-ca-refused').detail).toMatch(refusedAtTls('unknown ca'));
    expect(result(report, 'expired-certificate-refused').detail).toMatch(refusedAtTls('certificate expired'));
    expect(result(report, 'revoked-certificate-refused').detail).toMatch(new RegExp(`revoked certificate ${revoked.serial}: CONNACK 0x87 \\(this certificate is revoked\\); CRL lists it, nextUpdate .*; OCSP says revoked, nextUpdate`));
    expect(result(report, 'cross-thing-denied').detail).toBe(
      `${canary.thing} → ${peer.thing}: PUBACK 0x87 for things/${peer.thing}/fw-canary; PUBACK 0x87 for $fw/things/${peer.thing}/fw-canary; SUBACK 0x87 for things/${peer.thing}/#; SUBACK 0x87 for $fw/things/${peer.thing}/#; nothing delivered to ${peer.thing}`,
    );
    expect(result(report, 'rate-limit-enforced').detail).toMatch(/refused with PUBACK 0x97 \((message|byte) rate limit exceeded\) after a burst of \d+ allowed/);
    expect(result(report, 'audit-chain-verifies').detail).toMatch(/^\d+ events verified up to #\d+$/);
    expect(checker.readiness().ok).toBe(true);
    // Canaries are marked in the registry, and their keys are sealed at rest.
    expect((await t.node.context.identity.things.get(canary.thing)).attributes).toEqual({ 'fleetward-canary': 'true' });
    const metrics = await t.node.context.metrics.registry.metrics();
    expect(metrics).toContain('fleetward_control_held{control="plaintext-refused"} 1');
    expect(metrics).toMatch(/fleetward_control_last_checked_timestamp_seconds\{control="audit-chain-verifies"\} \d+/);
  }, 30_000);

  it('ok/an on-demand run right after another reuses its report (the canary keeps within its own connect rate)', async () => {
    const c = t.node.context;
    const checker = new Canaries({ config: c.config, clock: c.clock, logger: c.logger, metrics: c.metrics, audit: c.audit, identities, cas: c.identity.cas, certificates: c.identity.certificates, repository: c.updates.repository });
    checker.setEndpoints(endpoints);
    const first = await checker.run();
    expect(await checker.run()).toEqual(first);
  }, 30_000);

  it('ok/tampered update metadata: the targets in force, one byte flipped, fail signature verification', async () => {
    const { targets } = await setUpRepository(t.node.context);
    const before = await canaries().run();
    expect(result(before, 'tampered-update-rejected').detail).toMatch(/targets signed in memory with a throwaway key .* refused \(signature: targets was signed by 0\/1 keys\)/);
    await t.node.context.identity.thingTypes.create({ name: 'sensor' }, { name: 'operator:test' });
    await addArtifact(t.node.context, { version: '1.0.0', securityVersion: 1, hardware: ['sensor'] });
    await publishTargets(t.node.context, targets);
    const report = await canaries().run();
    expect(result(report, 'tampered-update-rejected')).toMatchObject({ status: 'held', detail: expect.stringMatching(/^targets v1 in force with one byte of its signed expiry flipped was refused \(signature: targets was signed by 0\/1 keys\)$/) });
    expect(flipExpiryByte(Buffer.from('{"signed":{"expires":"2030-01-01T00:00:00Z"}}'))?.toString()).toBe('{"signed":{"expires":"2030-01-01T00:00:01Z"}}');
  }, 30_000);

  it('fail/a device port without a client-certificate requirement is caught: no certificate, unknown CA and expired all get through TLS', async () => {
    const weak = await listen(
      createTlsServer({ key: t.node.server.keyPem, cert: t.node.server.certPem, requestCert: false }, (socket: TLSSocket) =>
        t.node.gateway.broker.handle(socket, { transport: 'tls', remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0, peerCertificate: undefined }),
      ),
    );
    try {
      const report = await canaries({}, { mqttPort: weak.port }).run();
      for (const control of ['client-certificate-required', 'unknown-ca-refused', 'expired-certificate-refused'] as const) {
        expect(result(report, control)).toMatchObject({ status: 'not-held', detail: expect.stringMatching(/the TLS handshake was accepted and the broker answered CONNACK 0x87 \(a client certificate is required: only the admission check refused it\)/) });
      }
      expect(report.held).toBe(false);
    } finally {
      await weak.close();
    }
  }, 30_000);

  it('fail/a rate limit the gateway does not enforce is caught (every publish past the configured burst is accepted)', async () => {
    // The canary is told a burst of 3 messages at 1/s; the node enforces its own, far larger defaults:
    // what a gateway that stopped applying its configured limit looks like from the device side.
    const enforced = parseThrottleSettings(t.node.context.config.limits);
    expect(enforced.messageBurst).toBeGreaterThan(20);
    const report = await canaries({ limits: { ...enforced, messageBurst: 3, messagesPerSecond: 1, maxPayloadBytes: 100 } }).run();
    expect(result(report, 'rate-limit-enforced')).toMatchObject({ status: 'not-held', detail: expect.stringMatching(/^\d+ publishes of 100 bytes in [\d.]+ s were all accepted by the rate limit \(burst 3, 1\/s\)$/) });
    expect(report.held).toBe(false);
  }, 30_000);

  it('fail/a plaintext MQTT listener is caught', async () => {
    const plain = await listen(createTcpServer((socket) => t.node.gateway.broker.handle(socket, { transport: 'tcp', remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0, peerCertificate: undefined })));
    try {
      const report = await canaries({}, { mqttPort: plain.port }).run();
      expect(result(report, 'plaintext-refused')).toMatchObject({ status: 'not-held', detail: `a plaintext MQTT CONNECT to port ${plain.port} was answered with CONNACK 0x87: the port speaks MQTT without TLS` });
    } finally {
      await plain.close();
    }
  }, 30_000);

  it('fail/a policy that reaches another thing is caught (publish passes the policy, subscription granted)', async () => {
    const { canary, peer } = await identities.ensure();
    const { policies } = t.node.context;
    await policies.create(
      'canary-too-wide',
      {
        version: '2026-11',
        statements: [
          { sid: 'connect', effect: 'allow', actions: ['mqtt:connect'], resources: ['client/${thing.name}'] },
          { sid: 'everything', effect: 'allow', actions: ['mqtt:publish', 'mqtt:subscribe', 'mqtt:receive'], resources: ['topic/things/#', 'topic/$fw/things/#'] },
        ],
      },
      { name: 'operator:test' },
    );
    await policies.attach('canary-too-wide', { kind: 'thing', name: canary.thing }, { name: 'operator:test' });
    try {
      const report = await canaries().run();
      const { status, detail } = result(report, 'cross-thing-denied');
      expect(status).toBe('not-held');
      expect(detail).toContain(`publish to things/${peer.thing}/fw-canary passed the policy: PUBACK 0x87 (no data contract covers topic things/${peer.thing}/fw-canary)`);
      expect(detail).toContain(`subscription to things/${peer.thing}/# was granted: SUBACK 0x01`);
    } finally {
      await policies.detach('canary-too-wide', { kind: 'thing', name: canary.thing }, { name: 'operator:test' });
    }
  }, 30_000);

  it('fail/stale CRL and OCSP answers are caught (the canary reads them a day and a half later)', async () => {
    const later = clockFrom(() => new Date(Date.now() + 36 * 3_600_000));
    const report = await canaries({ clock: later }).run();
    const { status, detail } = result(report, 'revoked-certificate-refused');
    expect(status).toBe('not-held');
    expect(detail).toMatch(/the CRL is stale \(nextUpdate .*\); the OCSP answer is stale \(nextUpdate .*\)/);
  }, 30_000);

  it('fail/a tampered audit row is caught: audited, metric 0, the node is not ready; recovery is audited too', async () => {
    const checker = canaries();
    expect((await checker.run()).held).toBe(true);
    const { db } = t.node.context.store;
    const row = await db.selectFrom('audit_events').select(['seq', 'details']).where('seq', '=', 2).executeTakeFirstOrThrow();
    // An attacker with database access first removes the append-only guard.
    const guard = await sql<{ sql: string }>`select sql from sqlite_master where type = 'trigger' and name = 'audit_events_no_update'`.execute(db);
    await sql`drop trigger audit_events_no_update`.execute(db);
    await db.updateTable('audit_events').set({ details: '{"tampered":true}' }).where('seq', '=', 2).execute();
    const report = await checker.run();
    expect(result(report, 'audit-chain-verifies')).toMatchObject({ status: 'not-held', detail: expect.stringMatching(/^the audit chain is broken: .*\(event #2\)$/) });
    expect(report.held).toBe(false);
    expect(checker.readiness()).toMatchObject({ ok: false, detail: expect.stringContaining('audit-chain-verifies (not-held)') });
    expect(report.controls.filter((c) => c.status !== 'held').map((c) => c.control)).toEqual(['audit-chain-verifies']);
    expect(await t.node.context.metrics.registry.metrics()).toContain('fleetward_control_held{control="audit-chain-verifies"} 0');
    await t.node.context.audit.flush();
    const failed = await t.node.context.audit.list({ action: 'health.control.failed', limit: 1000 });
    expect(failed.map((e) => e.target)).toContain('control:audit-chain-verifies');

    await db.updateTable('audit_events').set({ details: row.details }).where('seq', '=', 2).execute();
    await sql.raw(guard.rows[0]?.sql ?? '').execute(db);
    expect((await checker.run()).held).toBe(true);
    await t.node.context.audit.flush();
    expect((await t.node.context.audit.list({ action: 'health.control.recovered', limit: 1000 })).map((e) => e.target)).toContain('control:audit-chain-verifies');
  }, 30_000);
});

async function listen(server: TlsServer | TcpServer): Promise<{ port: number; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
