import { chmod, mkdir, mkdtemp, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FleetwardError } from '@fleetward/protocol';
import { checkPrivate, ensureHome, homeLayout, readPrivateFile, writePrivateFile } from '../../src/config/home.js';
import { refusalCode } from '../helpers/refusals.js';

async function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'fw-home-'));
}

describe('data folder', () => {
  it('is created with mode 0700, parents included', async () => {
    const layout = homeLayout(join(await scratch(), 'a', 'b', 'home'));
    await ensureHome(layout);
    expect((await stat(layout.root)).mode & 0o777).toBe(0o700);
  });

  it('refuses a folder that group or others can read, enter or write (like ssh), naming the fix', async () => {
    for (const mode of [0o755, 0o750, 0o701, 0o720]) {
      const root = join(await scratch(), 'home');
      await mkdir(root);
      await chmod(root, mode);
      const error = await ensureHome(homeLayout(root)).catch((e: unknown) => e as FleetwardError);
      expect(error).toBeInstanceOf(FleetwardError);
      expect((error as FleetwardError).code).toBe('FW_ERR_HOME_INSECURE');
      expect((error as FleetwardError).message).toContain(`chmod 700 ${root}`);
    }
  });

  it('accepts a data folder reached through a symbolic link, checking what it points to', async () => {
    const base = await scratch();
    const real = join(base, 'real');
    await mkdir(real, { mode: 0o700 });
    await symlink(real, join(base, 'link'));
    await expect(ensureHome(homeLayout(join(base, 'link')))).resolves.toBeUndefined();
    await chmod(real, 0o755);
    expect(await refusalCode(ensureHome(homeLayout(join(base, 'link'))))).toBe('FW_ERR_HOME_INSECURE');
  });

  it('writes secrets 0600, atomically, leaving no temporary file behind', async () => {
    const root = await scratch();
    const file = join(root, 'secret');
    await writePrivateFile(file, 'one');
    await writePrivateFile(file, 'two');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readPrivateFile(file, 'secret')).toString()).toBe('two');
    expect(await readdir(root)).toEqual(['secret']);
  });

  it('refuses to read a secret file others can read, or a secret that is a symbolic link', async () => {
    const root = await scratch();
    const file = join(root, 'kek.json');
    await writeFile(file, '{}', { mode: 0o644 });
    expect(await refusalCode(readPrivateFile(file, 'key file'))).toBe('FW_ERR_HOME_INSECURE');
    await chmod(file, 0o600);
    await symlink(file, join(root, 'link.json'));
    expect(await refusalCode(checkPrivate(join(root, 'link.json'), 'key file'))).toBe('FW_ERR_HOME_INSECURE');
    expect(await refusalCode(checkPrivate(join(root, 'missing'), 'key file'))).toBe('FW_ERR_HOME_NOT_INITIALIZED');
  });
});
