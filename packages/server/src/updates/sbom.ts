import { FleetwardError } from '@fleetward/protocol';

export const MAX_SBOM_BYTES = 8 * 1024 * 1024;
const SPEC_VERSIONS = ['1.4', '1.5', '1.6'];
const COMPONENT_TYPES = ['application', 'framework', 'library', 'container', 'platform', 'operating-system', 'device', 'device-driver', 'firmware', 'file', 'machine-learning-model', 'data', 'cryptographic-asset'];

/** A component of an SBOM as the vulnerability matching (rule 10) reads it. */
export interface SbomComponent {
  readonly type: string;
  readonly name: string;
  readonly version: string | null;
  readonly purl: string | null;
}

/**
 * Checks an artifact's SBOM: CycloneDX JSON 1.4 to 1.6 with a readable component list (each with a
 * known type and a name; version and purl strings when given). What it returns is what rule 10
 * matches advisories against, so a malformed entry is refused here rather than ignored later.
 */
export function parseCycloneDx(text: string): { readonly specVersion: string; readonly components: readonly SbomComponent[] } {
  if (Buffer.byteLength(text) > MAX_SBOM_BYTES) throw invalid(`is larger than ${MAX_SBOM_BYTES} bytes`);
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw invalid('is not JSON (only CycloneDX JSON is accepted)');
  }
  const bom = document as Record<string, unknown> | null;
  if (typeof bom !== 'object' || bom === null || Array.isArray(bom) || bom.bomFormat !== 'CycloneDX') throw invalid('is not a CycloneDX document (bomFormat must be "CycloneDX")');
  if (typeof bom.specVersion !== 'string' || !SPEC_VERSIONS.includes(bom.specVersion)) throw invalid(`has specVersion ${JSON.stringify(bom.specVersion)}; supported: ${SPEC_VERSIONS.join(', ')}`);
  const list = bom.components ?? [];
  if (!Array.isArray(list)) throw invalid('components must be an array');
  const components = list.map((item: unknown, index) => component(item, `components[${index}]`));
  return { specVersion: bom.specVersion, components };
}

function component(value: unknown, where: string): SbomComponent {
  const c = value as Record<string, unknown> | null;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw invalid(`${where} must be an object`);
  if (typeof c.type !== 'string' || !COMPONENT_TYPES.includes(c.type)) throw invalid(`${where}.type must be one of ${COMPONENT_TYPES.join(', ')}`);
  if (typeof c.name !== 'string' || c.name.length === 0 || c.name.length > 512) throw invalid(`${where}.name must be a string of 1 to 512 characters`);
  for (const field of ['version', 'purl'] as const) {
    if (c[field] !== undefined && (typeof c[field] !== 'string' || (c[field]).length > 1024)) throw invalid(`${where}.${field} must be a string`);
  }
  if (typeof c.purl === 'string' && !c.purl.startsWith('pkg:')) throw invalid(`${where}.purl must be a package URL (pkg:...)`);
  return { type: c.type, name: c.name, version: (c.version as string | undefined) ?? null, purl: (c.purl as string | undefined) ?? null };
}

function invalid(why: string): FleetwardError {
  return new FleetwardError('FW_ERR_VALIDATION', `the SBOM ${why}`, { field: 'sbom' });
}
