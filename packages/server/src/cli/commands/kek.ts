import type { Command } from 'commander';
import { action, withJson } from '../action.js';
import { configFrom, withConfigFlags } from '../config-flags.js';

export function kekCommand(program: Command): void {
  const kek = program.command('kek').description('the key-encryption key that seals every private key at rest (local data folder only)');
  withJson(withConfigFlags(kek.command('rotate')))
    .description('generate a new key-encryption key, re-seal every key with it, and drop the old one')
    .action(
      action(async (out, options) => {
        const { config } = configFrom(options);
        const { closeContext, localActor, openLocal, rotateKeyEncryptionKey } = await import('../../node.js');
        const context = await openLocal(config);
        try {
          const result = await rotateKeyEncryptionKey(context, localActor());
          out.result(result, (r) => `Rotated the key-encryption key: ${r.previous.join(', ')} -> ${r.active}; re-sealed ${r.resealed} key(s).\nCopy ${context.layout.keyRingFile} to every other node sharing this database, then restart them.`);
        } finally {
          await closeContext(context);
        }
      }),
    );
}
