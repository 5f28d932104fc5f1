import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/environment.js';
import { call, type CallOptions } from '../helpers/https-client.js';
import { startTestNode, type TestNode } from '../helpers/test-node.js';

describe.each(DIALECTS)('API bad input on %s', (dialect) => {
  let t: TestNode;
  let base: string;
  let admin: string;
  const send = (url: string, options: CallOptions = {}) => call(t.node.hierarchy.chainPem, base + url, { token: admin, ...options });
  const snapshot = async () => {
    const { db } = t.node.context.store;
    return {
      operators: await db.selectFrom('operators').selectAll().orderBy('id').execute(),
      tokens: await db.selectFrom('api_tokens').select(['id', 'revoked_at']).orderBy('id').execute(),
    };
  };

  beforeAll(async () => {
    t = await startTestNode(dialect, { env: { FLEETWARD_API_BODY_LIMIT_BYTES: '2048' } });
    base = (await t.node.listen()).apiUrl;
    admin = await t.operatorToken('admin-user', 'admin');
  });
  afterAll(async () => {
    await t.close();
  });

  const cases: [string, CallOptions & { url?: string }, number, string][] = [
    ['malformed JSON', { raw: '{"name": "eve", "role": ', contentType: 'application/json' }, 400, 'FW_ERR_BAD_REQUEST'],
    ['an empty JSON body', { raw: '', contentType: 'application/json' }, 400, 'FW_ERR_BAD_REQUEST'],
    ['an unknown field', { json: { name: 'eve', role: 'viewer', superuser: true } }, 400, 'FW_ERR_VALIDATION'],
    ['a number where a name belongs', { json: { name: 5, role: 'viewer' } }, 400, 'FW_ERR_VALIDATION'],
    ['a string where a number belongs (no coercion)', { json: { name: 'eve', role: 'viewer', ttlDays: '30' } }, 400, 'FW_ERR_VALIDATION'],
    ['an unknown role', { json: { name: 'eve', role: 'root' } }, 400, 'FW_ERR_VALIDATION'],
    ['an unknown scope', { json: { name: 'eve', role: 'viewer', scopes: ['everything'] } }, 400, 'FW_ERR_VALIDATION'],
    ['a lifetime out of range', { json: { name: 'eve', role: 'viewer', ttlDays: 5000 } }, 400, 'FW_ERR_VALIDATION'],
    ['a missing field', { json: { name: 'eve' } }, 400, 'FW_ERR_VALIDATION'],
    ['a JSON array instead of an object', { json: [{ name: 'eve', role: 'viewer' }] }, 400, 'FW_ERR_VALIDATION'],
    ['an oversized body', { json: { name: 'eve', role: 'viewer', pad: 'x'.repeat(4096) } }, 413, 'FW_ERR_PAYLOAD_TOO_LARGE'],
    ['a body that is not JSON', { raw: 'name=eve&role=viewer', contentType: 'application/x-www-form-urlencoded' }, 415, 'FW_ERR_UNSUPPORTED_MEDIA_TYPE'],
  ];

  for (const [what, options, status, code] of cases) {
    it(`${what}: ${status} ${code}, problem+json, nothing written`, async () => {
      const before = await snapshot();
      const answer = await send('/api/v1/operators', { method: 'POST', ...options });
      expect(answer.status, answer.text).toBe(status);
      expect(answer.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(answer.body).toMatchObject({ code, status, type: `urn:fleetward:problem:${code}`, instance: '/api/v1/operators' });
      expect(typeof answer.body.detail).toBe('string');
      expect(await snapshot()).toEqual(before);
    });
  }

  it('validation problems say which field is wrong', async () => {
    const answer = await send('/api/v1/operators', { method: 'POST', json: { name: 'eve', role: 'viewer', superuser: true } });
    expect(answer.body.errors).toEqual([{ path: 'body', message: 'unknown field "superuser"' }]);
  });

  it('bad query strings and path parameters are refused too', async () => {
    expect((await send('/api/v1/audit/events?limit=100000')).body.code).toBe('FW_ERR_VALIDATION');
    expect((await send('/api/v1/audit/events?limit=ten')).body.code).toBe('FW_ERR_VALIDATION');
    expect((await send('/api/v1/audit/events?sneaky=1')).body.code).toBe('FW_ERR_VALIDATION');
    expect((await send('/api/v1/operators/NOT%20VALID')).body.code).toBe('FW_ERR_VALIDATION');
    expect((await send('/api/v1/tokens/drop-table', { method: 'DELETE' })).body.code).toBe('FW_ERR_VALIDATION');
  });

  it('errors are counted per code in /metrics', async () => {
    const scraper = await t.operatorToken('scraper', 'viewer', ['metrics']);
    const metrics = await send('/metrics', { token: scraper });
    expect(metrics.text).toMatch(/fleetward_api_problems_total\{code="FW_ERR_VALIDATION"\} \d+/);
    expect(metrics.text).toMatch(/fleetward_api_problems_total\{code="FW_ERR_PAYLOAD_TOO_LARGE"\} 1/);
  });

  it('unknown routes are a problem+json 404, for anyone', async () => {
    const answer = await send('/api/v1/nothing-here', { token: undefined });
    expect(answer.status).toBe(404);
    expect(answer.body.code).toBe('FW_ERR_NOT_FOUND');
  });

  it('a good request still works after all that: creating an operator returns its token once', async () => {
    const answer = await send('/api/v1/operators', { method: 'POST', json: { name: 'eve', role: 'viewer', ttlDays: 30 } });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ operator: { name: 'eve', role: 'viewer' }, token: { scopes: ['api'] } });
    const listed = await send('/api/v1/operators/eve');
    expect(listed.text).not.toContain((answer.body.token as { token: string }).token);
    expect(listed.text).not.toContain('token_hash');
  });

  it('sends security headers and never lets answers be cached', async () => {
    const answer = await send('/api/v1/whoami');
    expect(answer.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    expect(answer.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'");
    expect(answer.headers['x-content-type-options']).toBe('nosniff');
    expect(answer.headers['x-frame-options']).toBe('DENY');
    expect(answer.headers['cache-control']).toBe('no-store');
  });

  it('serves an OpenAPI 3 document describing every route with bearer authentication', async () => {
    const answer = await send('/api/openapi.json', { token: undefined });
    expect(answer.status).toBe(200);
    expect(answer.body.openapi).toMatch(/^3\./);
    const paths = answer.body.paths as Record<string, Record<string, { requestBody?: unknown }>>;
    expect(Object.keys(paths)).toEqual(expect.arrayContaining(['/api/v1/operators', '/api/v1/operators/{name}', '/api/v1/audit/verification', '/readyz']));
    expect(paths['/api/v1/operators']?.post?.requestBody).toBeDefined();
    expect(answer.body.components).toMatchObject({ securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } });
  });
});

describe('API transport security', () => {
  let t: TestNode;
  let port: number;
  beforeAll(async () => {
    t = await startTestNode('sqlite');
    port = Number(new URL((await t.node.listen()).apiUrl).port);
  });
  afterAll(async () => {
    await t.close();
  });

  function handshake(options: { minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'; maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'; ciphers?: string }): Promise<{ protocol: string | null; cipher: string } | Error> {
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, ca: t.node.hierarchy.chainPem, servername: 'localhost', ...options }, () => {
        const result = { protocol: socket.getProtocol(), cipher: socket.getCipher().name };
        socket.end();
        resolve(result);
      });
      socket.on('error', resolve);
    });
  }

  it('speaks TLS 1.3 by default and TLS 1.2 with an AEAD, forward-secret suite', async () => {
    expect(await handshake({})).toMatchObject({ protocol: 'TLSv1.3' });
    const tls12 = await handshake({ maxVersion: 'TLSv1.2' });
    expect(tls12).toMatchObject({ protocol: 'TLSv1.2' });
    expect((tls12 as { cipher: string }).cipher).toMatch(/^ECDHE-ECDSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
  });

  it('refuses a client that offers only TLS 1.0 or 1.1', async () => {
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const result = await handshake({ minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' });
      expect(result).toBeInstanceOf(Error);
      expect((result as Error).message).toMatch(/protocol version|unsupported protocol/i);
    }
  });

  it('refuses a TLS 1.2 client that offers only CBC or non-forward-secret suites', async () => {
    for (const ciphers of ['ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA', 'AES128-GCM-SHA256:AES256-SHA256']) {
      const result = await handshake({ maxVersion: 'TLSv1.2', ciphers });
      expect(result).toBeInstanceOf(Error);
      expect((result as Error).message).toMatch(/handshake failure|no shared cipher/i);
    }
  });

  it('with tls.minVersion TLSv1.3, refuses TLS 1.2', async () => {
    const strict = await startTestNode('sqlite', { env: { FLEETWARD_TLS_MIN_VERSION: 'TLSv1.3' } });
    const strictPort = Number(new URL((await strict.node.listen()).apiUrl).port);
    try {
      const result = await new Promise<Error | string>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: strictPort, ca: strict.node.hierarchy.chainPem, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => {
          resolve(String(socket.getProtocol()));
          socket.end();
        });
        socket.on('error', resolve);
      });
      expect(result).toBeInstanceOf(Error);
    } finally {
      await strict.close();
    }
  });
});
