/**
 * `stsgate login`, `stsgate credentials` and `stsgate logout`, as the CLI calls them: messages for the
 * person on stderr, only the credential JSON on stdout, exit 0 or 1.
 */
import { ConfigFolder, configFolder } from './config-folder.js';
import { TerminalCredentialsError, terminalCredentials, terminalLogout } from './credentials.js';
import { gatewayOrigin } from './gateway-url.js';
import { terminalLogin } from './login.js';

const say = (line: string) => process.stderr.write(`${line}\n`);

/** `stsgate login --gateway URL [--provider P] [--role R] [--no-browser]`. */
export async function loginCommand(options: { gateway: string; provider?: string; role?: string; openBrowser: boolean }): Promise<number> {
  return terminalLogin({
    gateway: gatewayOrigin(options.gateway),
    ...(options.provider !== undefined ? { provider: options.provider } : {}),
    ...(options.role !== undefined ? { role: options.role } : {}),
    openBrowser: options.openBrowser,
    folder: new ConfigFolder(configFolder()),
    say,
  });
}

/** `stsgate credentials [--role R] [--gateway URL]`: `credential_process` JSON on stdout. */
export async function credentialsCommand(options: { gateway?: string; role?: string }, write: (line: string) => void): Promise<number> {
  try {
    const credentials = await terminalCredentials({
      ...(options.gateway !== undefined ? { gateway: gatewayOrigin(options.gateway) } : {}),
      ...(options.role !== undefined ? { role: options.role } : {}),
      folder: new ConfigFolder(configFolder()),
    });
    write(JSON.stringify(credentials));
    return 0;
  } catch (err) {
    if (err instanceof TerminalCredentialsError) {
      say(`stsgate: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

/** `stsgate logout [--gateway URL]`: ends the terminal session and forgets it. */
export async function logoutCommand(options: { gateway?: string }): Promise<number> {
  const gateway = await terminalLogout({ ...(options.gateway !== undefined ? { gateway: gatewayOrigin(options.gateway) } : {}), folder: new ConfigFolder(configFolder()) });
  say(gateway === undefined ? 'Not signed in to any gateway.' : `Signed out of ${gateway}.`);
  return 0;
}
