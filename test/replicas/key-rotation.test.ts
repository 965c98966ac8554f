/**
 * Signing key rotation under traffic, with real processes: two gateways share one keys file and one Redis
 * while a load loop issues tokens on one and verifies each at once on the other, twice: against its JWKS
 * through jose's remote key set (cached, as a resource server caches it) and by introspection. Meanwhile
 * `stsgate keys rotate` writes the next keys file.
 *
 * Time is scaled down from production (publish ahead 900 s, verifier caches of minutes, reload every 10 s):
 * the verifiers cache the JWKS for 1 s, the gateways re-read the file every 1 s, the key is published 4 s
 * before it signs. The verifiers' cooldown stays jose's 30 s, so an unknown `kid` can never be fetched on
 * demand: a token verifies only if its key was already published when the verifier last refreshed.
 */
import { readFile } from 'node:fs/promises';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL } from '../support/gateway.js';
import {
  allOutput,
  expectNoSecretsInOutput,
  runStsgate,
  startGatewayProcess,
  testPrefix,
  useProcessTestSetup,
  writeGatewayConfig,
  type GatewayProcess,
} from '../support/gateway-process.js';
import { sleep, postForm } from '../support/common.js';

const PUBLISH_AHEAD_SECONDS = 4;
const RELOAD_SECONDS = 1;
const VERIFIER_CACHE_MS = 1_000;
/** Load loops running at once: steady traffic, light enough for two cores. */
const LOOPS = 3;

/** One issued token and what became of verifying it on the other replica. */
interface Issued {
  token: string;
  kid: string;
  iat: number;
  /** When the issuing response arrived (ms). */
  at: number;
  by: 'a' | 'b';
  jwks?: string;
  introspection?: string;
}

describe('signing key rotation under traffic', () => {
  const setup = useProcessTestSetup('rotation');
  const { ledger } = setup;
  let configFile: string;
  let a: GatewayProcess;
  let b: GatewayProcess;

  beforeAll(async () => {
    const store = { url: REDIS_URL, prefix: testPrefix() };
    // The abuse limits count per minute; this test is the load they would rightly stop.
    const limits = { exchange_per_address_per_minute: 0, exchange_per_subject_per_minute: 0 };
    const config = () => writeGatewayConfig(setup.dir, { keys: setup.keys, issuer: setup.issuer, store, reloadIntervalSeconds: RELOAD_SECONDS, limits });
    const [configA, configB] = [await config(), await config()];
    configFile = configA.file;
    [a, b] = await Promise.all([startGatewayProcess(configA), startGatewayProcess(configB)]);
  });

  it('publishes the new key before it signs, switches at nbf, and never fails a token that was valid when issued', { timeout: 60_000 }, async () => {
    const oldKid = setup.keys.privateJwks[0]!.kid!;
    const gateways = { a, b };
    const verifiers = {
      a: createRemoteJWKSet(new URL(`${a.url}/.well-known/jwks.json`), { cacheMaxAge: VERIFIER_CACHE_MS, cooldownDuration: 30_000 }),
      b: createRemoteJWKSet(new URL(`${b.url}/.well-known/jwks.json`), { cacheMaxAge: VERIFIER_CACHE_MS, cooldownDuration: 30_000 }),
    };
    const other = (name: 'a' | 'b') => (name === 'a' ? 'b' : 'a');
    const issued: Issued[] = [];
    /** The first time each kid was seen in each gateway's JWKS. */
    const firstPublished = new Map<string, number>();
    let running = true;
    let counter = 0;

    const verify = async (record: Issued) => {
      const verifier = other(record.by);
      try {
        await jwtVerify(record.token, verifiers[verifier], { issuer: 'http://127.0.0.1:8080', audience: 'api.example.com', algorithms: ['ES256'] });
      } catch (err) {
        record.jwks = `${(err as Error).name}: ${(err as Error).message}`;
      }
      const res = await postForm(`${gateways[verifier].url}/oauth2/introspect`, { token: record.token });
      const resText = await res.text();
      if (res.status !== 200 || (JSON.parse(resText) as { active: boolean }).active !== true) record.introspection = `${res.status} ${resText}`;
    };

    const load = async () => {
      while (running) {
        const n = counter++;
        const by = n % 2 === 0 ? 'a' : 'b';
        // A new subject each time: every token is freshly signed, none comes from the cache.
        const subjectToken = await setup.issuer.mint({ sub: `repo:acme/app:rotation-${n}`, repository: 'acme/app', ref: 'refs/heads/feature' });
        ledger.add('web identity token', subjectToken);
        const res = await postForm(`${gateways[by].url}/oauth2/token`, {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: subjectToken,
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
          audience: 'reader',
        });
        const resText = await res.text();
        expect(res.status, `${resText} ${gateways[by].problems().slice(-3).join(' ')}`).toBe(200);
        const body = JSON.parse(resText) as { access_token: string; aws_credentials: { SecretAccessKey: string; SessionToken: string } };
        ledger.add('access token', body.access_token);
        ledger.add('SecretAccessKey', body.aws_credentials.SecretAccessKey);
        ledger.add('SessionToken', body.aws_credentials.SessionToken);
        const record: Issued = { token: body.access_token, kid: decodeProtectedHeader(body.access_token).kid!, iat: decodeJwt(body.access_token).iat!, at: Date.now(), by };
        issued.push(record);
        await verify(record);
      }
    };

    const watchJwks = async () => {
      while (running) {
        for (const [name, gateway] of Object.entries(gateways)) {
          const { keys: published } = (await (await fetch(`${gateway.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
          for (const { kid } of published) if (!firstPublished.has(`${name}:${kid}`)) firstPublished.set(`${name}:${kid}`, Date.now());
        }
        await sleep(100);
      }
    };

    const traffic = [...Array.from({ length: LOOPS }, load), watchJwks()];
    await sleep(1_000);
    const rotatedAt = Date.now();
    const rotate = await runStsgate(['keys', 'rotate', '--file', setup.keys.keysFile, '--config', configFile, '--publish-ahead', String(PUBLISH_AHEAD_SECONDS)]);
    expect(rotate.code, rotate.stderr).toBe(0);
    const file = JSON.parse(await readFile(setup.keys.keysFile, 'utf8')) as { keys: { kid: string; nbf?: number; exp?: number; d: string }[] };
    const newKey = file.keys.at(-1)!;
    ledger.add('new private signing key', newKey.d);
    const nbf = newKey.nbf!;
    expect(newKey.kid).not.toBe(oldKid);
    expect(rotate.stdout).toContain(`added key ${newKey.kid}`);
    // The old key stays published until every token it signed has expired.
    expect(file.keys.find((k) => k.kid === oldKid)!.exp).toBeGreaterThanOrEqual(nbf + 3600);

    // Traffic goes on past nbf until both replicas have signed a few tokens with the new key.
    const signedAfter = (by: 'a' | 'b') => issued.filter((r) => r.iat >= nbf && r.by === by).length;
    while (Date.now() < (nbf + 1) * 1000 || ((signedAfter('a') < 3 || signedAfter('b') < 3) && Date.now() < (nbf + 10) * 1000)) await sleep(100);
    running = false;
    await Promise.all(traffic);

    // Not one token failed on the other replica, by JWKS or by introspection.
    const failures = issued.filter((r) => r.jwks !== undefined || r.introspection !== undefined);
    expect(failures.map((r) => `${r.kid} iat ${r.iat} (nbf ${nbf}): ${r.jwks ?? ''} ${r.introspection ?? ''}`)).toEqual([]);

    // The signing key follows nbf exactly, on both replicas.
    const before = issued.filter((r) => r.iat < nbf);
    const after = issued.filter((r) => r.iat >= nbf);
    expect(before.length).toBeGreaterThanOrEqual(6);
    expect(after.length).toBeGreaterThanOrEqual(6);
    expect(new Set(before.map((r) => r.kid))).toEqual(new Set([oldKid]));
    expect(new Set(after.map((r) => r.kid))).toEqual(new Set([newKey.kid]));
    expect(new Set(after.map((r) => r.by))).toEqual(new Set(['a', 'b']));

    // The new key was in both JWKS well before the first token it signed (ahead by at least the verifiers' cache time).
    const firstSigned = Math.min(...after.map((r) => r.at));
    for (const name of ['a', 'b']) {
      const published = firstPublished.get(`${name}:${newKey.kid}`);
      expect(published, `${name} never published ${newKey.kid}`).toBeDefined();
      expect(published!).toBeGreaterThan(rotatedAt);
      expect(firstSigned - published!).toBeGreaterThan(VERIFIER_CACHE_MS);
    }

    // Tokens signed by the old key still verify after the switch, against a verifier that starts cold now.
    const fresh = createRemoteJWKSet(new URL(`${a.url}/.well-known/jwks.json`), { cacheMaxAge: VERIFIER_CACHE_MS, cooldownDuration: 30_000 });
    for (const record of [before[0]!, before.at(-1)!]) {
      await expect(jwtVerify(record.token, fresh, { issuer: 'http://127.0.0.1:8080', audience: 'api.example.com' })).resolves.toBeDefined();
    }
    console.info(`rotation: ${issued.length} tokens (${before.length} before nbf, ${after.length} after), each verified on the other replica; new kid published ${firstSigned - firstPublished.get(`a:${newKey.kid}`)!} ms before its first token`);
  });

  it('writes no token or secret into any log', () => {
    expect(allOutput()).toContain('signing keys reloaded');
    expectNoSecretsInOutput(ledger, 100);
  });
});
