import { writeFile } from 'node:fs/promises';
import { referencePages } from './reference-docs.js';

const docs = new URL('../../../docs/', import.meta.url);
for (const [name, render] of Object.entries(referencePages)) {
  await writeFile(new URL(name, docs), render());
  console.log(`wrote docs/${name}`);
}
