/**
 * `workers: n` with real processes: the primary restarts a worker that dies and the port keeps serving;
 * several workers are refused without a shared store and shared keys; a gateway that cannot start at all
 * makes the primary exit 1 instead of restarting forever.
 */
import { createServer, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { REDIS_URL } from '../support/gateway.js';
import {
  allOutput,
  expectNoSecretsInOutput,
  readyz,
  getText,
  runStsgate,
  startGatewayProcess,
  testPrefix,
  useProcessTestSetup,
  writeGatewayConfig,
} from '../support/gateway-process.js';
import { parsePrometheusText, sumOf } from '../support/prometheus.js';
import { ACCOUNT_ID, postForm } from '../support/common.js';

describe('workers', () => {
  const setup = useProcessTestSetup('workers');
  const { ledger } = setup;

  it('restarts a worker that dies while the other keeps serving, serves /metrics for all workers on the admin port, stops all with exit 0', { timeout: 60_000 }, async () => {
    const adminToken = randomBytes(32).toString('base64url');
    ledger.add('admin token', adminToken);
    const adminTokenFile = join(setup.dir, 'admin-token');
    await writeFile(adminTokenFile, `${adminToken}\n`, { mode: 0o600 });
    const config = await writeGatewayConfig(setup.dir, { keys: setup.keys, issuer: setup.issuer, store: { url: REDIS_URL, prefix: testPrefix() }, workers: 2, adminTokenFile });
    const gateway = await startGatewayProcess(config, { workers: 2 });
    const listening = gateway.logs().filter((line) => line.msg === 'worker listening');
    const victim = listening[0]!;

    process.kill(victim.pid as number, 'SIGKILL');
    const [died] = await gateway.waitForLogs((line) => line.msg === 'worker exited unexpectedly');
    expect(died).toMatchObject({ worker: victim.worker, pid: victim.pid, signal: 'SIGKILL' });
    // The survivor answers while the replacement starts.
    expect(await readyz(gateway.url)).toBe(200);
    const [restarted] = await gateway.waitForLogs((line) => line.msg === 'worker listening' && line.worker !== listening[0]!.worker && line.worker !== listening[1]!.worker, 1, 15_000);
    expect(restarted!.pid).not.toBe(victim.pid);

    // Both the survivor and the replacement issue credentials (round-robin reaches each).
    const answeredBy = new Set<unknown>();
    let issuedCount = 0;
    for (let i = 0; i < 20 && answeredBy.size < 2; i++) {
      const token = await setup.issuer.mint({ sub: `repo:acme/app:workers-${i}`, repository: 'acme/app', ref: 'refs/heads/main' });
      ledger.add('web identity token', token);
      const res = await postForm(`${gateway.url}/oauth2/token`, {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: token,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        audience: 'deployer',
      });
      const resText = await res.text();
      expect(res.status, resText).toBe(200);
      const body = JSON.parse(resText) as { access_token: string; aws_credentials: { SecretAccessKey: string; SessionToken: string } };
      for (const secret of [body.access_token, body.aws_credentials.SecretAccessKey, body.aws_credentials.SessionToken]) ledger.add('issued credentials', secret);
      const requestId = res.headers.get('x-request-id');
      const [line] = await gateway.waitForLogs((l) => l.event === 'issued' && l.requestId === requestId);
      answeredBy.add(line!.worker);
      issuedCount++;
    }
    expect(answeredBy).toEqual(new Set([listening[1]!.worker, restarted!.worker]));

    // The workers share the admin port as they share the public one. Whichever worker a scrape reaches,
    // /metrics counts for both: the primary sums their registries.
    for (let scrape = 0; scrape < 4; scrape++) {
      const res = await getText(`${gateway.adminUrl}/metrics`);
      expect(res.status, `${res.text} ${gateway.problems().join(' ')}`).toBe(200);
      expect(sumOf(parsePrometheusText(res.text), 'stsgate_credentials_issued_total')).toBe(issuedCount);
    }
    expect((await getText(`${gateway.url}/metrics`)).status).toBe(404);
    // Every worker guards the admin API with the token from the file.
    for (let i = 0; i < 4; i++) {
      expect((await getText(`${gateway.adminUrl}/admin/nothing-here`)).status).toBe(401);
      expect((await getText(`${gateway.adminUrl}/admin/nothing-here`, { authorization: `Bearer ${adminToken}` })).status).toBe(404);
      expect(await readyz(gateway.adminUrl)).toBe(200);
    }

    const exit = await gateway.stop('SIGTERM');
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(gateway.logs().filter((line) => line.msg === 'worker stopped').map((line) => line.code)).toEqual([0, 0]);
  });

  it.each([
    ['the in-memory store', {}, 'workers: found 2 with the in-memory store'],
    ['no encryption key', { store: { redis: { url: REDIS_URL } }, credentials: {} }, 'credentials.encryption_key: missing, expected a key with workers: 2'],
  ])('refuses several workers with %s, before forking', async (_name, change, problem) => {
    const file = join(setup.dir, `refused-${Math.random().toString(36).slice(2)}.yaml`);
    const document = {
      public_url: 'http://127.0.0.1:8080',
      listen: { host: '127.0.0.1', port: 8080 },
      signing: { keys_file: setup.keys.keysFile },
      credentials: { encryption_key: setup.keys.encryptionKey },
      account_id: ACCOUNT_ID,
      workers: 2,
      ...change,
    };
    await writeFile(file, stringify(document));
    const result = await runStsgate(['serve', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(problem);
    expect(result.stdout).not.toContain('starting workers');
  });

  it('exits 1 instead of restarting forever when no worker can start', { timeout: 40_000 }, async () => {
    // The primary checks the configuration and keys before it forks (as check-config does), so what makes
    // every worker fail here is what only a worker meets: its port already taken.
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const config = await writeGatewayConfig(setup.dir, { keys: setup.keys, issuer: setup.issuer, store: { url: REDIS_URL, prefix: testPrefix() }, workers: 2, port: (taken.address() as AddressInfo).port });
      // Killed after 35 s it would show code null: 1 means it gave up by itself.
      const result = await runStsgate(['serve', '--config', config.file], 35_000);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('a worker failed to start');
      expect(result.stderr).toContain('is already in use');
      expect(result.stdout).not.toContain('"msg":"restarting worker"');
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('refuses a broken keys file in the primary, before it forks a worker', async () => {
    const broken = join(setup.dir, 'broken-keys.json');
    await writeFile(broken, '{"keys": []}\n');
    const config = await writeGatewayConfig(setup.dir, { keys: { ...setup.keys, keysFile: broken }, issuer: setup.issuer, store: { url: REDIS_URL, prefix: testPrefix() }, workers: 2 });
    const result = await runStsgate(['serve', '--config', config.file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`signing.keys_file: ${broken}`);
    expect(result.stdout).not.toContain('starting workers');
  });

  it('writes no token or secret into any log', () => {
    expect(allOutput()).toContain('"event":"issued"');
    expectNoSecretsInOutput(ledger, 10);
  });
});
