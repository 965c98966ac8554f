/** The `--gateway URL` the terminal commands talk to. */

/** Hosts that are this machine: plain http to them never crosses a network. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** Thrown for a command-line mistake; the CLI prints it with the usage and exits 2. */
export class TerminalUsageError extends Error {}

/**
 * The gateway's origin (`https://sts.example.com`), from what the user typed. Plain http only for a gateway
 * on this machine: the session token and the credentials would otherwise cross the network in clear text.
 */
export function gatewayOrigin(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TerminalUsageError(`--gateway must be a URL such as https://sts.example.com, not ${JSON.stringify(raw.slice(0, 100))}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TerminalUsageError('--gateway must be an https:// URL');
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) throw new TerminalUsageError('--gateway must be https:// (plain http:// only for a gateway on this machine: 127.0.0.1, [::1] or localhost)');
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || (url.pathname !== '/' && url.pathname !== '')) {
    throw new TerminalUsageError('--gateway must be the gateway\'s base URL, without a path, query or user name');
  }
  return url.origin;
}

/** The gateway's JSON error message (`{ message }` or OAuth `error_description`), short and on one line, or the HTTP status. */
export async function gatewayErrorText(response: Response): Promise<string> {
  let detail = '';
  try {
    const body = (await response.json()) as Record<string, unknown>;
    const text = body.message ?? body.error_description ?? body.error;
    if (typeof text === 'string') detail = text.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 300);
  } catch {
    // not JSON: the status says enough
  }
  return detail !== '' ? `${detail} (HTTP ${response.status})` : `HTTP ${response.status}`;
}
