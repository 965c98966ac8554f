/** Signing keys: import rules, the nbf/exp schedule, rotation file computation and reload. */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSigningJwk, importSigningKeys, rotateKeysFile, SigningKeysFile } from '../../src/credentials/signing-keys.js';

const T = 1_800_000_000; // epoch seconds

describe('signing keys', () => {
  it.each([
    ['an empty set', { keys: [] }, /found an empty "keys" list, expected at least one private key/],
    ['a single JWK', { kty: 'EC', crv: 'P-256', d: 'd', x: 'x', y: 'y' }, /found a single JWK, expected a JWKS/],
    ['a symmetric key', { keys: [{ kty: 'oct', k: 'AAAA' }] }, /symmetric/],
    ['a public key only', { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }] }, /keys\[0\]: found a public key \(no "d"\), expected a private key/],
    ['an unsupported algorithm', { keys: [{ kty: 'EC', crv: 'P-256', d: 'd', x: 'x', y: 'y', alg: 'HS256' }] }, /found algorithm "HS256", expected one of ES256, EdDSA, RS256/],
  ])('refuses %s', async (_name, jwks, message) => {
    await expect(importSigningKeys(jwks, 'ES256')).rejects.toThrow(message);
  });

  it('a keys file of several algorithms: each rotates on its own, each signs its own tokens', async () => {
    const es = await generateSigningJwk('ES256');
    const rs = await generateSigningJwk('RS256');
    const freshRs = await generateSigningJwk('RS256');
    const next = rotateKeysFile({ keys: [es, rs] }, freshRs, { publishAheadSeconds: 600, maxTokenLifetimeSeconds: 3_600, now: T * 1000 });
    // The ES256 key is untouched (no exp); the RS256 key retires after the new one has signed for the longest token.
    expect(next.keys.map((k) => [k.kid, k.exp, k.nbf])).toEqual([
      [es.kid, undefined, undefined],
      [rs.kid, T + 600 + 3_600, undefined],
      [freshRs.kid, undefined, T + 600],
    ]);
    const set = await importSigningKeys(next, 'ES256');
    expect(set.current(T * 1000, 'ES256').kid).toBe(es.kid);
    expect(set.current(T * 1000, 'RS256').kid).toBe(rs.kid);
    expect(set.current((T + 600) * 1000, 'RS256').kid).toBe(freshRs.kid);
    expect(set.current((T + 600) * 1000, 'ES256').kid).toBe(es.kid);
    expect(() => set.current(T * 1000, 'EdDSA')).toThrow('the keys file holds no EdDSA key');
  });

  it('at most 100 keys: refused at load, and by a rotation before anything is written', async () => {
    const key = await generateSigningJwk('ES256');
    const keys = Array.from({ length: 100 }, (_, i) => ({ ...key, kid: `k${i}` }));
    await expect(importSigningKeys({ keys }, 'ES256')).resolves.toBeDefined();
    await expect(importSigningKeys({ keys: [...keys, { ...key, kid: 'k100' }] }, 'ES256')).rejects.toThrow('found 101 keys, expected at most 100 (AWS refuses a JWKS with more)');
    expect(() => rotateKeysFile({ keys }, { ...key, kid: 'new' }, { publishAheadSeconds: 600, maxTokenLifetimeSeconds: 3_600, now: T * 1000 })).toThrow('would hold 101 keys, at most 100');
  });

  it('publishes only public halves, without the schedule members', async () => {
    const set = await importSigningKeys({ keys: [{ ...(await generateSigningJwk('ES256')), nbf: T, exp: T + 100 }] }, 'ES256');
    const [published] = set.jwks(T * 1000).keys;
    expect(published).not.toHaveProperty('d');
    expect(published).not.toHaveProperty('nbf');
    expect(published).not.toHaveProperty('exp');
  });

  it('a rotation publishes the new key first, switches signing at nbf, and retires the old key after the longest token', async () => {
    const old = await generateSigningJwk('ES256');
    const fresh = await generateSigningJwk('ES256');
    const next = rotateKeysFile({ keys: [old] }, fresh, { publishAheadSeconds: 600, maxTokenLifetimeSeconds: 43_260, now: T * 1000 });
    const set = await importSigningKeys(next, 'ES256');
    const at = (seconds: number) => ({ signing: set.current(seconds * 1000).kid, published: set.jwks(seconds * 1000).keys.map((k) => k.kid) });

    expect(at(T)).toEqual({ signing: old.kid, published: [old.kid, fresh.kid] });
    expect(at(T + 599)).toEqual({ signing: old.kid, published: [old.kid, fresh.kid] });
    expect(at(T + 600)).toEqual({ signing: fresh.kid, published: [old.kid, fresh.kid] });
    // A token the old key signed just before the switch lives at most 43,260 s more.
    expect(at(T + 600 + 43_259).published).toContain(old.kid);
    expect(at(T + 600 + 43_260)).toEqual({ signing: fresh.kid, published: [fresh.kid] });

    // Rotating again drops keys already retired and keeps the schedule of the others.
    const third = await generateSigningJwk('ES256');
    const later = rotateKeysFile(next, third, { publishAheadSeconds: 600, maxTokenLifetimeSeconds: 43_260, now: (T + 50_000) * 1000 });
    expect(later.keys.map((k) => k.kid)).toEqual([fresh.kid, third.kid]);
  });

  it('a keys file is reloaded when it changes, and a broken version keeps the last good keys', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stsgate-keys-'));
    const file = join(dir, 'keys.json');
    const first = await generateSigningJwk('ES256');
    await writeFile(file, JSON.stringify({ keys: [first] }));
    const keys = await SigningKeysFile.open(file, 'ES256');
    expect(await keys.reload()).toEqual({ changed: false });

    const second = await generateSigningJwk('ES256');
    await writeFile(file, JSON.stringify({ keys: [first, second] }));
    expect(await keys.reload()).toEqual({ changed: true });
    expect(keys.set.current().kid).toBe(second.kid);

    await writeFile(file, '{ not json');
    await expect(keys.reload()).rejects.toThrow(`${file}: found text that is not JSON`);
    expect(keys.set.current().kid).toBe(second.kid);
  });
});
