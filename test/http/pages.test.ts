/**
 * The account page and the sign-in page as HTML, without a browser: the roles' details, the AWS profile,
 * the focus target, the words for a role not granted and for a sign-out, and that every value from a
 * request or the configuration is escaped. test/browser/chromium.test.ts checks the same in Chromium.
 */
import { describe, expect, it } from 'vitest';
import { awsConfigProfile } from '../../src/credentials/credential-formats.js';
import type { CredentialSet } from '../../src/domain/types.js';
import { accountPage, formatDuration, signInPage, type AccountView } from '../../src/http/pages.js';

const GATEWAY = 'https://sts.example.com';

const set = {
  accessKeyId: 'ASIAAAAAAAAAAAAAAAAA',
  secretAccessKey: 'secret',
  sessionToken: 'session',
  accessToken: 'access',
  expiresAt: new Date('2030-01-01T00:00:00Z'),
  session: { scopes: [] },
} as unknown as CredentialSet;

function view(change: Partial<AccountView> = {}): AccountView {
  return {
    identity: { source: 'google', subject: '1001', providerName: 'Google', claims: { email: 'alice@acme.com' } },
    csrfToken: 'form-token',
    gatewayUrl: GATEWAY,
    roles: [
      { name: 'deployer', arn: 'arn:aws:iam::123456789012:role/deployer', maxSessionSeconds: 7200, description: 'Deploys <acme/app> & friends' },
      { name: 'reader', arn: 'arn:aws:iam::123456789012:role/reader', maxSessionSeconds: 3600 },
    ],
    ...change,
  };
}

/** The text of the element with this id (a block's end is a space, other tags go; entities of the html tag decoded). */
function textOf(page: string, id: string): string {
  const match = new RegExp(`<(\\w+)[^>]* id="${id}"[^>]*>([\\s\\S]*?)</\\1>`).exec(page);
  if (!match) throw new Error(`no element #${id}`);
  return match[2]!.replace(/<\/(p|div|h\d)>/g, ' ').replace(/<[^>]+>/g, '').replace(/\s+/g, ' ').trim().replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

describe('the account page', () => {
  it('lists each role with its description, ARN and longest session, tied to its radio button', () => {
    const page = accountPage(view());
    expect(page).toContain('<input type="radio" name="role" id="role-0" value="deployer" aria-describedby="role-0-about"');
    expect(textOf(page, 'role-0-about')).toBe('Deploys <acme/app> & friends ARN arn:aws:iam::123456789012:role/deployer. Credentials last up to 2 hours.');
    expect(textOf(page, 'role-1-about')).toBe('ARN arn:aws:iam::123456789012:role/reader. Credentials last up to 1 hour.');
    // The description comes from the configuration: escaped like any other value.
    expect(page).toContain('Deploys &lt;acme/app&gt; &amp; friends');
  });

  it('with credentials: their heading takes the focus, and the AWS profile for the role is there with a copy button', () => {
    const page = accountPage(view({ chosenRole: 'deployer', credentials: { role: 'deployer', set } }));
    expect(page).toContain('<h2 id="credentials-heading" tabindex="-1" autofocus>Credentials</h2>');
    expect(page.match(/ autofocus/g)).toHaveLength(1);
    expect(textOf(page, 'aws-profile')).toBe(awsConfigProfile('deployer', GATEWAY).replace(/\s+/g, ' '));
    expect(page).toContain('<button type="button" class="copy" data-copy="aws-profile" hidden>Copy the profile</button>');
    expect(page).toContain(`<code>stsgate login --gateway ${GATEWAY}</code>`);
  });

  it('without credentials nothing takes the focus', () => {
    expect(accountPage(view())).not.toContain('autofocus');
  });

  it.each([
    ['a role name', 'admin', 'This account is not allowed the role admin, so no credentials were made for it.'],
    ['a role ARN', 'arn:aws:iam::123456789012:role/admin', 'This account is not allowed the role arn:aws:iam::123456789012:role/admin, so no credentials were made for it.'],
    ['text that is no role name (not repeated: the page is no billboard for a link)', 'Call 555-0100 now', 'This account is not allowed the role asked for, so no credentials were made for it.'],
  ])('a role not granted, asked as %s: said in plain words with the roles the account has', (_what, asked, sentence) => {
    const page = accountPage(view({ deniedRole: asked }));
    expect(page).toContain('<h2 id="denied-heading" tabindex="-1" autofocus>Role not granted</h2>');
    const text = textOf(page.replace(/^[\s\S]*<section class="denied"/, '<section id="denied"'), 'denied');
    expect(text).toContain(sentence);
    expect(text).toContain('The roles this account may use are: deployer, reader.');
    expect(text).toContain('If you need it, ask the gateway’s administrators and name this account: alice@acme.com (google:1001).');
    expect(page).not.toContain('555-0100');
  });

  it('a role not granted to an account with one role says "the role"', () => {
    const page = accountPage(view({ roles: [view().roles[1]!], deniedRole: 'admin' }));
    expect(page).toContain('The role this account may use is: <strong>reader</strong>.');
  });
});

describe('the sign-in page', () => {
  it('after sign-out says issued keys stay valid until they expire, and how an administrator revokes them', () => {
    const page = signInPage([], {}, { signedOut: true });
    const text = textOf(page.replace('<section class="signed-out"', '<section id="signed-out"'), 'signed-out');
    expect(text).toContain('You are signed out');
    expect(text).toContain('Credentials issued before you signed out still work until they expire: signing out does not cancel them.');
    expect(text).toContain('An administrator runs stsgate revoke --subject with your account’s subject');
    expect(page).toContain('role="status"');
  });

  it('otherwise says nothing about signing out', () => {
    expect(signInPage([])).not.toContain('signed out');
  });
});

describe('formatDuration', () => {
  it.each([
    [900, '15 minutes'],
    [3600, '1 hour'],
    [5400, '1 hour 30 minutes'],
    [7200, '2 hours'],
    [43200, '12 hours'],
    [3661, '1 hour 1 minute 1 second'],
  ])('%i seconds: %s', (seconds, words) => {
    expect(formatDuration(seconds)).toBe(words);
  });
});

describe('awsConfigProfile', () => {
  it('is a profile running stsgate credentials, with the STS endpoint of the gateway in its own services section', () => {
    expect(awsConfigProfile('deployer', GATEWAY)).toBe(
      [
        '[profile deployer]',
        `credential_process = stsgate credentials --role deployer --gateway ${GATEWAY}`,
        'region = us-east-1',
        'services = stsgate-deployer',
        '',
        '[services stsgate-deployer]',
        'sts =',
        `  endpoint_url = ${GATEWAY}`,
      ].join('\n'),
    );
  });
});
