import type { Command } from 'commander';
import { caSummaries, type CaSummary } from '../../identity/ca-repository.js';
import type { IssuingRotation } from '../../identity/ca-rotation.js';
import { action, withJson } from '../action.js';
import { withConfigFlags } from '../config-flags.js';
import { table } from '../output.js';
import { perform } from '../target.js';

export function caCommand(program: Command): void {
  const ca = program.command('ca').description("Fleetward's certificate authorities");

  withJson(withConfigFlags(ca.command('show')))
    .description('the CA hierarchy: root, active and retired issuing CAs')
    .action(
      action(async (out, options) => {
        const cas = await perform(options, (context) => caSummaries(context.store.db), async (client) => (await client.call<{ cas: CaSummary[] }>('GET', '/api/v1/cas')).cas);
        out.result({ cas }, (r) => table(['id', 'role', 'status', 'key', 'not after', 'subject'], r.cas.map((c) => [c.id, c.role, c.status, c.keyOnline ? `${c.keyAlgorithm} online` : `${c.keyAlgorithm} offline`, c.notAfter, c.subject])));
      }),
    );

  withJson(withConfigFlags(ca.command('rotate-issuing')))
    .description('introduce a new issuing CA; the previous one stays trusted while devices still use its certificates')
    .option('--request-rotation', 'mark every device certificate of the previous CA "must rotate" so devices move over now')
    .action(
      action(async (out, options) => {
        const requestRotation = options.requestRotation === true;
        const rotation = await perform(
          options,
          // The node module is already loaded by the local connection; imported here to keep `--help` light.
          async (context, actor) => (await import('../../node.js')).rotateIssuingCaOf(context, actor, { requestRotation }),
          (client) => client.call<IssuingRotation>('POST', '/api/v1/cas/rotate-issuing', { requestRotation }),
        );
        out.result(rotation, (r) => `New issuing CA ${r.current} replaces ${r.previous}${r.rotationRequested > 0 ? `; ${r.rotationRequested} device certificate(s) marked must rotate` : ''}. Distribute the new ca.pem to relying parties.`);
      }),
    );
}
