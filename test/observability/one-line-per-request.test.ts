/**
 * One log event per request: an audited request's audit line carries the request's method, path, status
 * and time, and no separate access line is written for it; a request that made no decision gets its
 * access line. An audit event raised after its request has ended is written at once, never held for a
 * middleware that is gone.
 */
import { Writable } from 'node:stream';
import type { Context } from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, PENDING_AUDIT } from '../../src/observability/audit.js';
import { createLogger } from '../../src/observability/logger.js';
import { issuerFor, startTestGateway, type TestGateway } from '../support/gateway.js';
import { TestIssuer } from '../support/test-issuer.js';
import { MAIN, postSts } from '../security/harness.js';

let idp: TestIssuer;
let gateway: TestGateway;

beforeAll(async () => {
  idp = await TestIssuer.start();
  gateway = await startTestGateway({ issuers: [issuerFor(idp)] });
});
afterAll(async () => {
  await gateway?.close();
  await idp?.close();
});

/** The info-level lines of one request (the debug level also has "request refused"). */
const linesOf = (requestId: string | null) => gateway.logs().filter((line) => line.requestId === requestId && line.level === 'info');

describe('one log line per request', () => {
  it('an issuance: its audit line, with the request\'s fields, and nothing else', async () => {
    const res = await postSts(gateway.url, { WebIdentityToken: await idp.mint(MAIN) });
    expect(res.status).toBe(200);
    const lines = linesOf(res.headers.get('x-request-id'));
    expect(lines).toEqual([expect.objectContaining({ log: 'audit', event: 'issued', action: 'AssumeRoleWithWebIdentity', method: 'POST', path: '/', status: 200, client: '127.0.0.1' })]);
    expect(lines[0]!.ms).toEqual(expect.any(Number));
    expect(lines[0]!.msg).toBeUndefined();
  });

  it('a refusal: its audit line with the status and code the client got', async () => {
    const res = await postSts(gateway.url, { WebIdentityToken: await idp.mint({ ...MAIN, ref: 'refs/heads/dev' }) });
    expect(res.status).toBe(403);
    expect(linesOf(res.headers.get('x-request-id'))).toEqual([expect.objectContaining({ log: 'audit', event: 'denied', code: 'AccessDenied', status: 403, method: 'POST', path: '/' })]);
  });

  it('a request without a decision: the access line', async () => {
    const res = await fetch(`${gateway.url}/no-such-path`);
    expect(res.status).toBe(404);
    expect(linesOf(res.headers.get('x-request-id'))).toEqual([expect.objectContaining({ msg: 'request', method: 'GET', path: '/no-such-path', status: 404, code: 'NotFound' })]);
  });
});

describe('AuditLog without a request to wait for', () => {
  function capture() {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        callback();
      },
    });
    return { lines, audit: new AuditLog(createLogger({ destination, format: 'json' })) };
  }
  const contextWith = (state: Record<string, unknown>) => ({ state, ip: '192.0.2.1' }) as unknown as Context;

  it('holds an event for the request\'s line while the request runs', () => {
    const { lines, audit } = capture();
    const pending: unknown[] = [];
    audit.revoked(contextWith({ requestId: 'r-1', [PENDING_AUDIT]: pending }), 'SESSIONID', true);
    expect(lines).toEqual([]);
    expect(pending).toEqual([expect.objectContaining({ fields: expect.objectContaining({ event: 'revoked', requestId: 'r-1', found: true }) })]);
  });

  it('writes an event at once once the request has ended (or outside any request)', () => {
    const { lines, audit } = capture();
    audit.revoked(contextWith({ requestId: 'r-2', [PENDING_AUDIT]: undefined }), 'SESSIONID', false);
    audit.revoked(contextWith({ requestId: 'r-3' }), undefined, false);
    expect(lines.map((line) => [line.log, line.event, line.requestId])).toEqual([
      ['audit', 'revoked', 'r-2'],
      ['audit', 'revoked', 'r-3'],
    ]);
  });
});
