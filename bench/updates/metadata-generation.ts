import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { MetadataKind } from '@tufjs/models';
import { signMetadata } from '../../packages/server/src/updates/tuf/offline-signing.js';
import { parse, verifyTargets } from '../../packages/server/src/updates/tuf/repository-metadata.js';
import { openBench } from '../lib/bench-home.js';
import { progress } from '../lib/report.js';
import { setUpRepository, THING_TYPE } from './update-home.js';

const bench = { name: 'operator:bench' };
/** Artifacts per product name: versions 1.0.0, 1.0.1, ... with rising security versions. */
const VERSIONS_PER_NAME = 100;
const UPLOAD_CONCURRENCY = 16;

/** One round of the offline targets workflow, in milliseconds. */
export interface MetadataRound {
  /** `proposeTargets`: the next targets metadata listing every uploaded artifact. */
  readonly proposeMs: number;
  /** `signMetadata` with the offline Ed25519 targets key (canonical JSON + one signature). */
  readonly signMs: number;
  /** `importTargets`: parse, threshold and every target checked against its artifact, stored, snapshot + timestamp signed and stored, audited. */
  readonly importMs: number;
  /** Of the import: `verifyTargets` alone on the same document (pure; measured separately, just before the import). */
  readonly verifyMs: number;
  readonly totalMs: number;
  readonly targets: number;
}

/**
 * Metadata generation (rule 4's target: 10,000 targets in under 2 s): `count` artifacts of random
 * bytes uploaded (not timed) to a fresh SQLite data folder in this process, then `runs` rounds
 * (after one warm-up) of propose → sign offline → import, each a new targets version.
 */
export async function measureMetadataGeneration(count: number, runs: number): Promise<{ rounds: MetadataRound[]; uploadSeconds: number }> {
  const home = await openBench();
  try {
    const { context } = home;
    const repository = context.updates.repository;
    await context.identity.thingTypes.create({ name: THING_TYPE }, bench);
    const targetsKey = await setUpRepository(context);
    const uploadStarted = performance.now();
    let next = 0;
    const upload = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const name = `fw-${String(i % Math.ceil(count / VERSIONS_PER_NAME)).padStart(3, '0')}`;
        const minor = Math.floor(i / Math.ceil(count / VERSIONS_PER_NAME));
        await context.updates.artifacts.add(Readable.from([randomBytes(256)]), { name, version: `1.0.${minor}`, securityVersion: minor, hardware: [THING_TYPE] }, bench);
      }
    };
    await Promise.all(Array.from({ length: UPLOAD_CONCURRENCY }, upload));
    const uploadSeconds = (performance.now() - uploadStarted) / 1000;
    progress(`  ${count} artifacts uploaded in ${uploadSeconds.toFixed(1)} s`);

    const rounds: MetadataRound[] = [];
    for (let round = 0; round <= runs; round++) {
      const t0 = performance.now();
      const proposal = await repository.proposeTargets(30);
      const t1 = performance.now();
      const signed = await signMetadata(proposal, [targetsKey]);
      const t2 = performance.now();
      // The verification step on its own, with the inputs importTargets gives it (read outside the timing).
      const status = await repository.status();
      const root = parse(MetadataKind.Root, JSON.parse(((await repository.metadataFile(`${status.root?.version}.root.json`)) as Buffer).toString('utf8')));
      const currentBody = status.targets === null ? null : await repository.metadataFile(`${status.targets.version}.targets.json`);
      const current = currentBody === null ? null : parse(MetadataKind.Targets, JSON.parse(currentBody.toString('utf8')));
      const artifacts = new Map((await context.updates.artifacts.list()).map((a) => [a.target, a]));
      const v0 = performance.now();
      verifyTargets(root, current, signed, artifacts, new Date());
      const verifyMs = performance.now() - v0;
      const t3 = performance.now();
      const after = await repository.importTargets(signed, bench);
      const t4 = performance.now();
      if (after.targets?.count !== count || after.snapshot === null || after.timestamp === null) throw new Error(`the import published ${after.targets?.count} targets, not ${count}`);
      const result = { proposeMs: t1 - t0, signMs: t2 - t1, importMs: t4 - t3, verifyMs, totalMs: t1 - t0 + (t2 - t1) + (t4 - t3), targets: after.targets.count };
      progress(`  ${round === 0 ? 'warm-up' : `round ${round}/${runs}`}: ${JSON.stringify(Object.fromEntries(Object.entries(result).map(([k, v]) => [k, Math.round(v)])))}`);
      if (round > 0) rounds.push(result);
    }
    return { rounds, uploadSeconds };
  } finally {
    await home.close();
  }
}
