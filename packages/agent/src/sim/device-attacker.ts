import { FleetwardError, Topics } from '@fleetward/protocol';
import type { FleetwardAgent } from '../agent.js';
import { REPORT_SECONDS, REPORTED_ATTACKS, type AttackKind, type ReportedAttack } from './attacks.js';
import { HostileReports, unsignedImageInventory } from './hostile-reports.js';
import { closedOrAfter, flood, stolenSession, type StolenCredentials } from './stolen-session.js';

/** What the hostile profile needs from the fleet: its attacks, where a clone connects from, an operator's revocation. */
export interface AttackSetup {
  readonly kinds: readonly AttackKind[];
  readonly cloneSource: ((index: number) => string) | null;
  readonly revoke: (serial: string) => Promise<void>;
}

/** The device under attack, as its SimulatedDevice shows it. */
export interface AttackedDevice {
  readonly index: number;
  readonly credentials: StolenCredentials;
  /** Its agent now (a reboot replaces it). */
  agent(): FleetwardAgent | null;
  /** Connects the gateway refused so far. */
  refusedConnections(): number;
  error(error: unknown): void;
}

export interface AttackCount {
  attempted: number;
  refused: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One hostile device's attacks, in the order that lets each be judged: first those the platform
 * judges at once (on another device's topics, a flood, an image it never signed), then, once the
 * device's baseline is learned, those judged against it (what the compromised device reports, a
 * clone of its certificate), and last the revocation, which ends the device's run.
 */
export class DeviceAttacker {
  readonly reports: HostileReports;
  readonly kinds: ReadonlySet<AttackKind>;
  readonly counts = new Map<AttackKind, AttackCount>();
  readonly #device: AttackedDevice;
  readonly #setup: AttackSetup;

  constructor(device: AttackedDevice, setup: AttackSetup, kinds: readonly AttackKind[], inventory: () => Promise<object>) {
    this.#device = device;
    this.#setup = setup;
    this.kinds = new Set(kinds);
    this.reports = new HostileReports(inventory);
    for (const kind of kinds) this.counts.set(kind, { attempted: 0, refused: 0 });
  }

  /** Counts a failure to play this device's attacks among the device's errors. */
  fail(error: unknown): void {
    this.#device.error(error);
  }

  /** Attacks judged at once. */
  async beforeBaseline(neighbour: string): Promise<void> {
    const agent = await this.#online(10_000);
    if (agent === null) return;
    if (this.kinds.has('cross-device')) await this.#crossDevice(agent, neighbour);
    if (this.kinds.has('firmware') || this.kinds.has('flood')) await this.#stolenKey().catch((error: unknown) => this.#device.error(error));
  }

  /** Attacks judged when the window closes, against the learned baseline. */
  async afterBaseline(): Promise<void> {
    const reported = REPORTED_ATTACKS.filter((kind) => this.kinds.has(kind));
    if (reported.length > 0) await this.#compromise(reported);
    if (this.kinds.has('clone')) await this.#clone().catch((error: unknown) => this.#device.error(error));
  }

  /** The operator revokes the device's certificate; the device keeps trying with it and must be refused. */
  async revoked(): Promise<void> {
    if (!this.kinds.has('revoked')) return;
    const agent = await this.#online(15_000);
    if (agent === null) return;
    const count = this.#count('revoked');
    count.attempted += 1;
    const before = this.#device.refusedConnections();
    await this.#setup.revoke(agent.status().serial);
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && this.#device.refusedConnections() === before) await sleep(50);
    if (this.#device.refusedConnections() > before && !agent.online) count.refused += 1;
  }

  /** Another device's topic, and the whole fleet's: the policy must refuse both. */
  async #crossDevice(agent: FleetwardAgent, neighbour: string): Promise<void> {
    const count = this.#count('cross-device');
    count.attempted += 1;
    const refusedBefore = agent.status().refused;
    await agent.publish(`things/${neighbour}/telemetry/env`, { celsius: 20, seq: 1, sentAt: Date.now() }).catch(() => undefined);
    await agent.drained(5_000);
    if (agent.status().refused > refusedBefore) count.refused += 1;
    count.attempted += 1;
    await agent.subscribe('things/#', () => undefined).then(
      () => undefined,
      (error: unknown) => {
        if (error instanceof FleetwardError && error.code === 'FW_ERR_FORBIDDEN') count.refused += 1;
      },
    );
  }

  /**
   * The device's key used outside its agent (not through the polite agent): an inventory naming an
   * image the fleet never signed (accepted, and must be detected), then a flood the gateway's
   * per-device limits must refuse. One session for both: each costs the device a connect.
   */
  async #stolenKey(): Promise<void> {
    const client = await stolenSession(this.#device.credentials);
    try {
      if (this.kinds.has('firmware')) {
        this.#count('firmware').attempted += 1;
        await client.publishAsync(Topics.inventory(this.#device.credentials.thing), JSON.stringify(unsignedImageInventory(this.#device.credentials.thing, new Date())), { qos: 1 });
      }
      if (this.kinds.has('flood')) {
        const count = this.#count('flood');
        count.attempted += 1;
        if (await flood(client, this.#device.credentials.thing, 1_000)) count.refused += 1;
      }
    } finally {
      await client.endAsync(true);
    }
  }

  /** The attacker's changes on the device (a backdoor listener, exfiltration, a miner), in its agent's next report. */
  async #compromise(attacks: readonly ReportedAttack[]): Promise<void> {
    this.reports.compromise(attacks);
    const deadline = Date.now() + 5 * REPORT_SECONDS * 1000;
    while (this.reports.sentSinceCompromise === 0 && Date.now() < deadline) await sleep(100);
    if (this.reports.sentSinceCompromise === 0) {
      this.#device.error(new Error(`the compromised device's agent sent no metrics report within ${5 * REPORT_SECONDS} s`));
      return;
    }
    for (const kind of attacks) this.#count(kind).attempted += 1;
  }

  /**
   * The certificate from another address while the device is online: the gateway admits the clone
   * (the certificate is valid) while the agent's session is still live, and closes the agent's as
   * a takeover; the agent then takes its session back.
   */
  async #clone(): Promise<void> {
    const source = this.#setup.cloneSource;
    if (source === null || (await this.#online(15_000)) === null) return;
    this.#count('clone').attempted += 1;
    const client = await stolenSession(this.#device.credentials, { localAddress: source(this.#device.index) });
    await closedOrAfter(client, 3_000);
    await client.endAsync(true);
  }

  async #online(timeoutMs: number): Promise<FleetwardAgent | null> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until && this.#device.agent()?.online !== true) await sleep(50);
    const agent = this.#device.agent();
    if (agent?.online === true) return agent;
    this.#device.error(new Error(`the agent was not online within ${timeoutMs / 1000} s for its attacks`));
    return null;
  }

  #count(kind: AttackKind): AttackCount {
    const count = this.counts.get(kind) ?? { attempted: 0, refused: 0 };
    this.counts.set(kind, count);
    return count;
  }
}
