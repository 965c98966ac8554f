/**
 * A loopback stand-in for AWS STS that answers AssumeRoleWithWebIdentity as it is told to (AWS's success
 * XML, AWS's error XML with a status, throttling with Retry-After, garbage, silence) and records every
 * request's form, so the broker's tests see what went over the wire: retries, session policies, the
 * token. A scripted answer is used once; when the script is empty, `fallback` answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';

export type FaultAnswer =
  | { kind: 'ok'; accessKeyId?: string; durationSeconds?: number }
  | { kind: 'error'; status: number; code: string; message?: string; retryAfter?: number }
  | { kind: 'garbage' }
  | { kind: 'hang' };

export class StsFaultServer {
  readonly requests: URLSearchParams[] = [];
  readonly script: FaultAnswer[] = [];
  fallback: FaultAnswer = { kind: 'ok' };
  #server: Server;
  #hanging = new Set<ServerResponse>();
  url = '';

  private constructor() {
    this.#server = createServer((req, res) => void this.#answer(req, res));
  }

  static async start(): Promise<StsFaultServer> {
    const server = new StsFaultServer();
    await new Promise<void>((resolve) => server.#server.listen(0, '127.0.0.1', resolve));
    server.url = `http://127.0.0.1:${(server.#server.address() as { port: number }).port}`;
    return server;
  }

  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    this.requests.push(form);
    const answer = this.script.shift() ?? this.fallback;
    const requestId = randomBytes(8).toString('hex');
    switch (answer.kind) {
      case 'hang':
        this.#hanging.add(res);
        return;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
        res.end('<html>not STS</html>');
        return;
      case 'error':
        res.writeHead(answer.status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId, ...(answer.retryAfter !== undefined ? { 'retry-after': String(answer.retryAfter) } : {}) });
        res.end(
          `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>${answer.status >= 500 ? 'Receiver' : 'Sender'}</Type><Code>${answer.code}</Code><Message>${answer.message ?? answer.code}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
        );
        return;
      case 'ok': {
        const seconds = answer.durationSeconds ?? Number(form.get('DurationSeconds') ?? 3600);
        const expiration = new Date(Date.now() + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        const accessKeyId = answer.accessKeyId ?? `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
        res.writeHead(200, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId });
        res.end(
          `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult>` +
            `<Credentials><AccessKeyId>${accessKeyId}</AccessKeyId><SecretAccessKey>${randomBytes(20).toString('base64')}</SecretAccessKey><SessionToken>${randomBytes(64).toString('base64')}</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
            `<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/stand-in/${form.get('RoleSessionName') ?? ''}</Arn><AssumedRoleId>AROASTANDIN:${form.get('RoleSessionName') ?? ''}</AssumedRoleId></AssumedRoleUser>` +
            `</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
        );
        return;
      }
    }
  }
}
