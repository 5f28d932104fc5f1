import type { Actor } from '../audit/audit-events.js';
import type { Artifacts } from './artifacts.js';
import type { Deployments, SecurityReleaseResult } from './deployments/index.js';
import type { RepositoryStatus, TufRepository } from './tuf/tuf-repository.js';

export interface Publication {
  readonly status: RepositoryStatus;
  /** The automatic deployments started for security releases signed by this publication. */
  readonly securityDeployments: readonly { readonly target: string; readonly deployment: string | null; readonly blocked: number }[];
}

/**
 * Publishes signed targets metadata, then starts the automatic deployment of each security release
 * it signs for the first time (rule 4: security fixes reach the groups that opt in without an
 * operator having to remember to deploy them).
 */
export async function publishTargets(deps: { readonly repository: TufRepository; readonly artifacts: Pick<Artifacts, 'get'>; readonly deployments: Pick<Deployments, 'deploySecurityRelease'> }, json: unknown, actor: Actor): Promise<Publication> {
  const before = new Set((await deps.repository.signedTargets()).keys());
  const status = await deps.repository.importTargets(json, actor);
  const securityDeployments: Publication['securityDeployments'][number][] = [];
  for (const [path, target] of await deps.repository.signedTargets()) {
    if (before.has(path) || !target.securityRelease) continue;
    const artifact = await deps.artifacts.get(path);
    if (artifact === null) continue;
    const result: SecurityReleaseResult = await deps.deployments.deploySecurityRelease(artifact, actor);
    securityDeployments.push({ target: path, deployment: result.deployment?.id ?? null, blocked: result.blocked.length });
  }
  return { status, securityDeployments };
}
