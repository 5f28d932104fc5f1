import type { Message } from '../message.js';

/**
 * A shared subscription's message sent to another node, which hands it to one of its own members
 * of the group (MQTT 4.8.2): the publishing node picks the node, that node picks the member.
 */
export interface SharedChoice {
  readonly node: string;
  readonly pattern: string;
  readonly group: string;
}

/** A message published on another node, with its place in that node's publishing order. */
export interface RemotePublish {
  readonly node: string;
  readonly seq: number;
  readonly message: Message;
  readonly shared: readonly SharedChoice[];
}

/** A node took ownership of a client id's session from `owner`, which must hand it over. */
export interface Claim {
  readonly clientId: string;
  readonly claimer: string;
  readonly owner: string;
  readonly cleanStart: boolean;
  /** Chosen by the claimer and echoed in the release, so a late release of an older claim is not taken for this one's. */
  readonly token: string;
}

/** The previous owner has handed the session over: its state is in persistence. */
export interface Release {
  readonly clientId: string;
  readonly owner: string;
  readonly claimer: string;
  readonly token: string;
  /** The last sequence number the owner had published when it let go: it delivered those itself. */
  readonly lastSeq: number;
}

/** Whether a node has members of a shared subscription, and whether one of them is connected. */
export interface ShareEntry {
  readonly node: string;
  readonly pattern: string;
  readonly group: string;
  readonly online: boolean;
}

/** A node's entry changed; `online` undefined: the node has no member left. */
export interface ShareUpdate {
  readonly node: string;
  readonly pattern: string;
  readonly group: string;
  readonly online: boolean | undefined;
}

export interface ClaimResult {
  /** The node that owned the session before, if any (possibly departed). */
  readonly previous: string | undefined;
  /** Whether `previous` is alive and was asked to hand the session over: a release will come. */
  readonly handover: boolean;
}

/** What the engine hears from the bus, in the one order every node hears it. */
export interface ClusterListener {
  published(event: RemotePublish): void;
  claimed(claim: Claim): void;
  released(release: Release): void;
  shareChanged(update: ShareUpdate): void;
  nodeLeft(node: string): void;
  /** The link to the bus was lost and is back, or this node was taken for departed: events may have been missed. */
  resync(): void;
  /** A background operation failed; the transport goes on by itself. */
  failed(error: unknown): void;
}

/**
 * Which node owns each client id's session. Exactly one node routes messages to a session at any
 * point of the bus order: the owner, until a claim appears on the bus.
 */
export interface OwnershipRegistry {
  /**
   * Makes this node the owner. When another live node owned the session, a claim is appended to
   * the bus in the same step, after every message this node published before the call.
   */
  claim(clientId: string, cleanStart: boolean, token: string): Promise<ClaimResult>;
  /** Answers a claim once the session's state is in persistence, after every message published so far. */
  release(release: Release): Promise<void>;
  /** Gives the client id up (its session ended), unless another node owns it by now. */
  disown(clientId: string): Promise<void>;
  /** Keeps this node's ownership of an offline session for `ttlMs` at most: it has expired by then. */
  lease(clientId: string, ttlMs: number): Promise<void>;
  /** Takes the sessions among these that no live node owns; resolves to the client ids taken. */
  adopt(clientIds: readonly string[]): Promise<string[]>;
  /** Takes a share of the sessions a departed node owned; resolves to the client ids taken. */
  adoptFrom(node: string): Promise<string[]>;
  /** The owner of each client id, in order. */
  owners(clientIds: readonly string[]): Promise<(string | undefined)[]>;
}

/** Which nodes have members of which shared subscriptions. */
export interface ShareRegistry {
  /** Records this node's entry (or removes it, `online` undefined) and tells the other nodes. */
  set(pattern: string, group: string, online: boolean | undefined): Promise<void>;
  /** Every live node's entries. */
  snapshot(): Promise<ShareEntry[]>;
}

/**
 * How nodes of one cluster reach each other: a totally ordered bus for messages and session
 * handovers, and the registries behind them. The engine works the same over any implementation.
 */
export interface ClusterTransport {
  readonly nodeId: string;
  /**
   * Whether this node is on the bus now (both ways): a message published while it is not would
   * not reach the other nodes, so the engine refuses QoS 1 and 2 publishes meanwhile.
   */
  readonly connected: boolean;
  /** How long a claimer waits for the previous owner's release before it goes on without it, in ms. */
  readonly handoverTimeoutMs: number;
  readonly ownership: OwnershipRegistry;
  readonly shares: ShareRegistry;
  /** Starts listening; resolves once events reach the listener. `now` is the engine's clock. */
  join(listener: ClusterListener, now: () => number): Promise<void>;
  /** Appends a message published on this node to the bus: batched, never awaited per message. */
  publish(seq: number, message: Message, shared: readonly SharedChoice[]): void;
  /** Leaves the cluster (the other nodes adopt this node's sessions) and closes the transport. */
  leave(): Promise<void>;
}
