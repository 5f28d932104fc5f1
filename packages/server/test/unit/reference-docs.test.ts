import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { referencePages } from '../../scripts/reference-docs.js';

describe('generated reference docs', () => {
  for (const [name, render] of Object.entries(referencePages)) {
    it(`docs/${name} matches the source (run \`npm run docs:generate\` after changing it)`, async () => {
      const onDisk = await readFile(new URL(`../../../../docs/${name}`, import.meta.url), 'utf8');
      expect(onDisk).toBe(render());
    });
  }
});
