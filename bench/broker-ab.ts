/**
 * Issue 13: a cache hit on a brokered set costs no more than a native cache hit. One gateway in this
 * process (real Redis, an AWS STS stand-in for the broker's first call), the same web identity token for
 * AssumeRoleWithWebIdentity with a broker target's RoleArn (B) and a native role's (N), sequential
 * requests, rounds interleaved N B / B N so that drift and warm-up fall on both alike; the figure is this
 * process's CPU (gateway and client together) per request, whose median over the rounds is compared.
 *
 *   npm run bench:broker
 */
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.js';
import { issuerFor, redisStoreConfig, standardRoles, startTestGateway } from '../test/support/gateway.js';
import { TestIssuer } from '../test/support/test-issuer.js';
import { StsFaultServer } from '../test/support/sts-fault-server.js';
const workload = await TestIssuer.start();
const aws = await StsFaultServer.start();
const targets = parseConfig(stringify({ public_url: 'http://127.0.0.1:8080', account_id: '123456789012', dev: { allow_insecure_http: true }, targets: [{ name: 'b', kind: 'aws', subject: 'repo:{claims.repository}:ref:{claims.ref}', aws: { principal_tags: { repo: '{claims.repository}', actor: '{claims.actor}' }, transitive_tag_keys: ['repo'], source_identity: '{claims.actor}' }, broker: { role_arn: 'arn:aws:iam::123456789012:role/brokered', endpoint: aws.url, session_name: '{claims.actor}' } }] }), {}, '/tmp').targets!;
const gw = await startTestGateway({ issuers: [issuerFor(workload)], store: redisStoreConfig(), roles: standardRoles().map((r) => (r.name === 'reader' ? { ...r, targets: ['b'] } : r)), config: { targets } });
const token = await workload.mint({ repository: 'acme/app', ref: 'refs/heads/main', actor: 'octocat' });
const body = (arn: string) => new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: arn, RoleSessionName: 'probe', WebIdentityToken: token }).toString();
const B = body('arn:aws:iam::123456789012:role/brokered'), N = body('arn:aws:iam::123456789012:role/reader');
const one = async (b: string) => { const r = await fetch(gw.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: b }); await r.text(); if (r.status !== 200) throw new Error(String(r.status)); };
async function measure(b: string, n: number) { const t = process.cpuUsage(); const w = performance.now(); for (let i = 0; i < n; i++) await one(b); const u = process.cpuUsage(t); return { cpu: (u.user + u.system) / n, wall: ((performance.now() - w) * 1000) / n }; }
await measure(B, 500); await measure(N, 500);
const res = { B: [] as number[], N: [] as number[] };
for (let round = 0; round < 6; round++) { for (const [k, b] of (round % 2 ? [['B', B], ['N', N]] : [['N', N], ['B', B]]) as [string, string][]) res[k as 'B' | 'N'].push((await measure(b, 1500)).cpu); }
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
console.log(`native cache hit: ${res.N.map((x) => x.toFixed(0)).join(' ')} µs CPU/request, median ${med(res.N).toFixed(0)}`);
console.log(`broker cache hit: ${res.B.map((x) => x.toFixed(0)).join(' ')} µs CPU/request, median ${med(res.B).toFixed(0)}`);
console.log(`broker / native: ${(med(res.B) / med(res.N)).toFixed(2)}x`);
await gw.close(); await aws.close(); await workload.close();
process.exit(0);
