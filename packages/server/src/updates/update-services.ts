import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/settings.js';
import type { KeyRing } from '../identity/key-ring.js';
import type { Groups } from '../identity/registry/groups.js';
import type { ThingTypes } from '../identity/registry/thing-types.js';
import type { Things } from '../identity/registry/things.js';
import type { ThirdPartyCas } from '../identity/third-party-cas.js';
import type { Logger } from '../observability/logger.js';
import type { NodeMetrics } from '../observability/metrics.js';
import type { Store } from '../store/store.js';
import { ArtifactStore } from './artifact-store.js';
import { Artifacts } from './artifacts.js';
import { SoftwareInventory } from './software-inventory.js';
import { TufRepository } from './tuf/tuf-repository.js';
import { updateAlerts } from './update-alerts.js';
import { UpdateDownloads } from './update-downloads.js';
import type { PendingJobs } from '@fleetward/protocol';
import { Deployments, type HealthProvider } from './deployments/index.js';
import type { RaiseAlert } from './types.js';

/** Rule 4: artifacts, the TUF repository, downloads, the software inventory. */
export interface UpdateServices {
  readonly blobs: ArtifactStore;
  readonly artifacts: Artifacts;
  readonly repository: TufRepository;
  readonly downloads: UpdateDownloads;
  readonly inventory: SoftwareInventory;
  readonly deployments: Deployments;
  readonly raiseAlert: RaiseAlert;
}

export interface UpdateDependencies {
  readonly config: Config;
  readonly artifactsDir: string;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly keyRing: KeyRing;
  readonly logger: Logger;
  readonly metrics: NodeMetrics;
  readonly thingTypes: ThingTypes;
  readonly things: Things;
  readonly groups: Groups;
  readonly thirdPartyCas: ThirdPartyCas;
  /** Pushes a device its pending jobs (the gateway, once a node runs one). */
  readonly notify: (thing: string, jobs: PendingJobs) => void;
  /** Where devices fetch TUF metadata and targets (the API's public URL). */
  readonly jobUrls: { readonly metadataUrl: string; readonly targetsUrl: string };
  readonly health: HealthProvider;
  /** Where alerts go besides the audit trail, the metric and the log (rule 5's alert service, on a serving node). */
  readonly forwardAlert?: RaiseAlert;
}

export function openUpdateServices(deps: UpdateDependencies): UpdateServices {
  const { config, store, audit, clock } = deps;
  const blobs = new ArtifactStore(deps.artifactsDir);
  const recorded = updateAlerts(deps);
  const forward = deps.forwardAlert;
  const raiseAlert: RaiseAlert =
    forward === undefined
      ? recorded
      : async (alert) => {
          await recorded(alert);
          await forward(alert);
        };
  // The repository lists the artifacts; the artifacts say which are signed: bound late.
  const late: { artifacts?: Artifacts } = {};
  const repository = new TufRepository({
    store,
    audit,
    clock,
    keyRing: deps.keyRing,
    expiry: { timestampHours: config.updates.timestampHours, snapshotDays: config.updates.snapshotDays },
    artifacts: () => (late.artifacts as Artifacts).list(),
  });
  const signedTargets = () => repository.signedTargets();
  const artifacts = new Artifacts({ store, blobs, audit, clock, thingTypes: deps.thingTypes, maxBytes: config.updates.maxArtifactMib * 1024 * 1024, signedTargets: async () => new Set((await signedTargets()).keys()) });
  late.artifacts = artifacts;
  const downloads = new UpdateDownloads({ store, groups: deps.groups, thirdPartyCas: deps.thirdPartyCas, audit, repository });
  const inventory = new SoftwareInventory({ store, audit, clock, things: deps.things, signedTargets, raiseAlert, quarantineUnauthorized: config.updates.quarantineUnauthorized === 'on' });
  const deployments = new Deployments({ store, audit, clock, things: deps.things, artifacts, notify: deps.notify, jobUrls: deps.jobUrls, raiseAlert, health: deps.health, minAgentVersion: config.updates.minAgentVersion });
  return { blobs, artifacts, repository, downloads, inventory, deployments, raiseAlert };
}
