/**
 * A development JWT issuer on loopback, for trying stsgate without a real CI system: it serves OIDC
 * discovery and a JWKS at http://127.0.0.1:8081, and hands out signed tokens at
 * `GET /token?<claim>=<value>...` (GitHub-Actions-like claims; `sub` is derived from them).
 * Its keys are generated at start and die with it. Never point a production gateway at it.
 *
 *   npx tsx examples/dev-issuer.ts [--port 8081]
 *   curl -s 'http://127.0.0.1:8081/token?repository=acme/app&ref=refs/heads/main'
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8081' }, audience: { type: 'string', default: 'sts.example.com' } } });
const port = Number(values.port);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey, publicKey } = await generateKeyPair('ES256');
const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'dev-1', alg: 'ES256', use: 'sig' }] };

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', issuer);
  const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  if (url.pathname === '/.well-known/openid-configuration') return json(200, { issuer, jwks_uri: `${issuer}/jwks`, id_token_signing_alg_values_supported: ['ES256'] });
  if (url.pathname === '/jwks') return json(200, jwks);
  if (url.pathname !== '/token') return json(404, { error: 'not found' });
  const claims: Record<string, string> = Object.fromEntries(url.searchParams);
  const repository = claims.repository ?? 'acme/app';
  const ref = claims.ref ?? 'refs/heads/main';
  const token = await new SignJWT({ repository_owner: repository.split('/')[0], ref_type: ref.startsWith('refs/tags/') ? 'tag' : 'branch', ...claims, repository, ref })
    .setProtectedHeader({ alg: 'ES256', kid: 'dev-1', typ: 'JWT' })
    .setIssuer(issuer)
    .setSubject(`repo:${repository}:ref:${ref}`)
    .setAudience(values.audience)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(privateKey);
  res.writeHead(200, { 'content-type': 'text/plain' }).end(token);
});
server.listen(port, '127.0.0.1', () => {
  process.stderr.write(`DEVELOPMENT issuer on ${issuer} (keys generated at start; not for production)\n`);
});
