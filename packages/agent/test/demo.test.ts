import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('npm run demo', () => {
  it('starts a node, provisions a simulated fleet by claim, shows the operator view, and cleans up', async () => {
    const script = new URL('../scripts/demo.ts', import.meta.url).pathname;
    const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, DEMO_DEVICES: '5', DEMO_SECONDS: '3' }, timeout: 120_000 }, (error, out) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout: out }),
      );
    });
    expect(code, stdout).toBe(0);
    expect(stdout).toMatch(/provisioned 5 {2}connected 5/);
    expect(stdout).toContain('fleetward-sim-env');
    expect(stdout).toContain('provisioning.claim');
  }, 150_000);
});
