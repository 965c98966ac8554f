/**
 * `stsgate login` as a person runs it, in its own process, with the browser step played here: the printed
 * address through the gateway and an oidc-provider stand-in (Google's or Okta's) to the command's loopback port.
 */
import { TestBrowser } from './browser.js';
import { confirmTerminalLogin } from './browser-login.js';
import { runCli } from './cli-process.js';
import type { LoginEnvironment } from './login-environment.js';

/** Signs `user` in at `provider` (Google unless told) through `stsgate login --no-browser`; returns the command's exit code. */
export async function terminalLoginAs(env: LoginEnvironment, person: Record<string, string | undefined>, user: string, provider: 'google' | 'okta' = 'google'): Promise<number> {
  const cli = runCli(['login', '--gateway', env.gateway.url, '--provider', provider, '--no-browser'], person);
  const [address] = await cli.waitFor(/http:\/\/127\.0\.0\.1:\d+\/cli\/login\?\S+/, 'stderr');
  const [, shown] = await cli.waitFor(/confirm the code ([A-Z2-7]{4}-[A-Z2-7]{4})/, 'stderr');
  const browser = new TestBrowser();
  const authorization = await confirmTerminalLogin(browser, address, { code: shown! });
  const callback = await browser.get(await env[provider].signIn(browser, authorization, user));
  await browser.get(new URL(callback.headers.get('location')!));
  return cli.exited;
}
