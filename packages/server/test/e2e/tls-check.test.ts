import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { judge, type Scan } from '../../scripts/tls-check.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/tls-check.ts', import.meta.url));

const finding = (id: string, finding: string, severity = 'INFO') => ({ id, finding, severity });
const GOOD: Scan = {
  protocols: [finding('TLS1', 'not offered'), finding('TLS1_1', 'not offered'), finding('TLS1_2', 'offered'), finding('TLS1_3', 'offered with final')],
  ciphers: [finding('cipherlist_AVERAGE', 'not offered'), finding('cipherlist_STRONG', 'offered')],
  cipherTests: [finding('cipher_x1302', 'x1302   TLS_AES_256_GCM_SHA384            ECDH 253   AESGCM      256      TLS_AES_256_GCM_SHA384')],
  vulnerabilities: [finding('LUCKY13', 'not vulnerable', 'OK')],
};

describe('TLS check (testssl.sh)', () => {
  it('fails a listener that offers TLS 1.1, CBC, RSA key transport or a vulnerability', () => {
    expect(judge(GOOD)).toEqual([]);
    expect(judge({ ...GOOD, protocols: [finding('TLS1_1', 'offered (deprecated)')] })).toEqual(['TLS1_1 is offered']);
    expect(judge({ ...GOOD, ciphers: [finding('cipherlist_AVERAGE', 'offered')] })).toEqual(['cipherlist_AVERAGE: offered']);
    expect(judge({ ...GOOD, cipherTests: [finding('cipher_x9d', 'x9d     AES256-GCM-SHA384                 RSA        AESGCM      256      TLS_RSA_WITH_AES_256_GCM_SHA384')] })).toEqual([
      'AES256-GCM-SHA384 is not forward secret (key exchange RSA)',
    ]);
    expect(judge({ ...GOOD, cipherTests: [finding('cipher_xc013', 'xc013   ECDHE-RSA-AES128-SHA              ECDH 253   AES         128      TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA')] })).toEqual([
      'ECDHE-RSA-AES128-SHA is not AEAD (encryption AES)',
    ]);
    expect(judge({ ...GOOD, vulnerabilities: [finding('LUCKY13', 'potentially vulnerable', 'LOW')] })).toEqual(['LUCKY13: potentially vulnerable']);
    expect(judge({ ...GOOD, cipherTests: [] })).toEqual(['no cipher suite could be enumerated']);
  });

  it('passes the gateway and the API of a node with default settings (testssl.sh, real handshakes)', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', SCRIPT], { timeout: 170_000 });
    expect(stdout).toMatch(/^PASS mqtt /m);
    expect(stdout).toMatch(/^PASS api /m);
  }, 180_000);
});
