import { canonicalize } from '@tufjs/canonical-json';
import { Metadata, MetadataKind, Targets } from '@tufjs/models';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ListedTargets, parse, proposeTargets, targetFileOf } from '../../../src/updates/tuf/repository-metadata.js';
import type { FirmwareArtifact } from '../../../src/updates/types.js';

const artifact = (name: string, i: number): FirmwareArtifact => ({
  target: `${name}-1.0.${i}`,
  name,
  version: `1.0.${i}`,
  securityVersion: i,
  sha256: i.toString(16).padStart(64, '0'),
  size: 100 + i,
  hardware: ['sensor-v2'],
  releaseNotes: null,
  securityRelease: i % 2 === 0,
  hasSbom: false,
  signed: false,
  createdAt: '2026-12-04T00:00:00.000Z',
  createdBy: 'test',
});

/** Our linear-time targets metadata must sign and verify the very bytes the library would. */
describe('targets metadata in linear time', () => {
  it('serializes byte for byte like @tufjs/models Targets, for any set of targets', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9._-]{0,20}$/), { maxLength: 20 }), (names) => {
        const options = { version: 3, specVersion: '1.0.31', expires: '2027-01-01T00:00:00Z' };
        const ours = new ListedTargets(options);
        const theirs = new Targets(options);
        names.forEach((name, i) => {
          ours.addTarget(targetFileOf(artifact(name, i)));
          theirs.addTarget(targetFileOf(artifact(name, i)));
        });
        expect(canonicalize(ours.toJSON())).toBe(canonicalize(theirs.toJSON()));
        expect(JSON.stringify(ours.toJSON())).toBe(JSON.stringify(theirs.toJSON()));
      }),
    );
  });

  it('parses what the library parses, and refuses what it refuses', () => {
    const proposal = proposeTargets(null, [artifact('a', 1), artifact('b', 2)], new Date('2027-01-01T00:00:00Z')).toJSON();
    const ours = parse(MetadataKind.Targets, proposal);
    const theirs = Metadata.fromJSON(MetadataKind.Targets, proposal);
    expect(JSON.stringify(ours.toJSON())).toBe(JSON.stringify(theirs.toJSON()));
    const proto = JSON.parse(JSON.stringify(proposal).replace('"a-1.0.1"', '"__proto__"')) as Record<string, unknown>;
    expect(Object.keys(parse(MetadataKind.Targets, proto).signed.targets)).toContain('__proto__');
    const broken = structuredClone(proposal) as { signed: { targets: Record<string, unknown> } };
    broken.signed.targets['b-1.0.2'] = 'not a target';
    expect(() => parse(MetadataKind.Targets, broken)).toThrow(/malformed/);
    const noLength = structuredClone(proposal) as { signed: { targets: Record<string, { length?: number }> } };
    delete noLength.signed.targets['b-1.0.2']!.length;
    expect(() => parse(MetadataKind.Targets, noLength)).toThrow(/malformed/);
  });
});
