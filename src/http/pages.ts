/**
 * Every HTML page stsgate serves, in one file, built with the `html` tagged template, which escapes every
 * interpolated value unless it is already `Html`. No inline script or style: the page's CSS and its one
 * small script (the copy buttons) are served from `/assets/`, so the Content-Security-Policy stays strict.
 * Everything works without JavaScript.
 */
import { PAGE_OUTPUTS, awsConfigProfile } from '../credentials/credential-formats.js';
import { accountLabel } from '../domain/account-label.js';
import type { CredentialSet } from '../domain/types.js';
import type { GatewayError } from '../errors/gateway-error.js';
import { LoginFailure } from '../idp/login-failure.js';
import { PASTED_CODE_REDIRECT } from '../idp/terminal-login.js';

/** Markup that is safe to insert as is (built by `html`). */
export class Html {
  constructor(readonly markup: string) {}

  toString(): string {
    return this.markup;
  }
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => HTML_ESCAPES[c]!);
}

/** The tagged template: `html\`<p>${text}</p>\`` escapes `text`; `Html` values and arrays of them are inserted as they are. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((value, i) => {
    out += render(value) + strings[i + 1]!;
  });
  return new Html(out);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.markup;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** The Content-Security-Policy of every page: nothing inline, nothing from elsewhere, no framing. */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** A provider button on the sign-in page. */
export interface ProviderLink {
  id: string;
  displayName: string;
  href: string;
}

/** The signed-in person, as the page shows them. */
export interface PageIdentity {
  source: string;
  subject: string;
  providerName: string;
  claims: Readonly<Record<string, unknown>>;
}

/** Credentials to show for one role: the set, in every output of PAGE_OUTPUTS. */
export interface PageCredentials {
  role: string;
  set: CredentialSet;
}

/** What every page may carry besides its content. */
export interface PageOptions {
  /** A warning shown at the top of every page (`stsgate demo` marks itself with it). */
  notice?: string;
}

/** Claims worth showing on the page, in this order (others are left out: the page is not a claims dump). */
const SHOWN_CLAIMS = ['email', 'email_verified', 'name', 'login', 'preferred_username', 'username', 'hd', 'orgs', 'teams', 'groups'];

function layout(title: string, main: Html, options: PageOptions & { signedIn?: { label: string; csrfToken: string }; refreshTo?: string } = {}): string {
  const account = options.signedIn
    ? html`<nav aria-label="Account">
        <p class="who">Signed in as <strong>${options.signedIn.label}</strong></p>
        <form method="post" action="/logout">
          <input type="hidden" name="csrf_token" value="${options.signedIn.csrfToken}">
          <button type="submit" class="secondary">Sign out</button>
        </form>
      </nav>`
    : '';
  return `<!doctype html>\n${html`<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  ${options.refreshTo !== undefined ? html`<meta http-equiv="refresh" content="0; url=${options.refreshTo}">` : ''}
  <title>${title} · stsgate</title>
  <link rel="stylesheet" href="/assets/stsgate.css">
  <script src="/assets/stsgate.js" defer></script>
</head>
<body>
  <a class="skip" href="#main">Skip to the main content</a>
  ${options.notice ? html`<aside class="notice" aria-label="Notice"><p>${options.notice}</p></aside>` : ''}
  <header>
    <p class="brand"><a href="/">stsgate</a></p>
    ${account}
  </header>
  <main id="main" tabindex="-1">
    ${main}
  </main>
  <footer><p>Short-lived credentials for an identity you already have.</p></footer>
</body>
</html>`.markup}\n`;
}

/**
 * The start page when nobody is signed in: one button per configured provider. `signedOut`: the person
 * has just signed out, and the page says what that did and did not end.
 */
export function signInPage(providers: readonly ProviderLink[], options: PageOptions = {}, view: { signedOut?: boolean; continuingTo?: string } = {}): string {
  const buttons =
    providers.length === 0
      ? html`<p>No identity provider is configured on this gateway.</p>`
      : html`<ul class="providers">${providers.map((p) => html`<li><a class="button" href="${p.href}">Sign in with ${p.displayName}</a></li>`)}</ul>`;
  return layout(
    'Sign in',
    html`<h1>Sign in</h1>
    ${view.signedOut ? signedOutNotice() : ''}
    ${view.continuingTo !== undefined
      ? html`<p>Sign in with an account you already have to continue to <strong>${view.continuingTo}</strong>. It will see who you are, your groups and the roles this gateway allows you.</p>`
      : html`<p>Sign in with an account you already have. You get short-lived credentials for the roles your account is allowed.</p>`}
    ${buttons}`,
    options,
  );
}

/**
 * Signing out ends the browser session only: keys already issued are bearer credentials that nothing
 * calls back, so they work until they expire unless an administrator revokes them (`stsgate revoke`
 * writes a watermark every replica checks).
 */
function signedOutNotice(): Html {
  return html`<section class="signed-out" role="status" aria-labelledby="signed-out-heading">
      <h2 id="signed-out-heading">You are signed out</h2>
      <p>This browser’s session has ended. Credentials issued before you signed out still work until they expire: signing out does not cancel them.</p>
      <p>If some may have leaked, ask the gateway’s administrators to revoke them. An administrator runs <code>stsgate revoke --subject</code> with your account’s subject, which cuts off everything issued to your account until then.</p>
    </section>`;
}

/** What the terminal login's confirmation page shows and sends back. */
export interface TerminalConfirmation {
  /** The code `stsgate login` printed (`terminalConfirmationCode`). */
  code: string;
  /** One button per provider the person may sign in with. */
  providers: readonly { id: string; displayName: string }[];
  /** The checked `/cli/login` parameters, sent back as hidden fields. */
  fields: Readonly<Record<string, string>>;
  /** The form token, also held in this browser's form cookie. */
  formToken: string;
}

/**
 * The confirmation of a terminal login (`stsgate login`), asked before the browser is sent anywhere: a
 * `/cli/login` link someone else made (listening on a loopback port of a shared machine) shows a code the
 * person's own terminal never printed. Only the POST of this form starts the login.
 */
export function terminalConfirmPage(view: TerminalConfirmation, options: PageOptions = {}): string {
  const buttons =
    view.providers.length === 0
      ? html`<p>No identity provider is configured on this gateway.</p>`
      : html`<ul class="providers">${view.providers.map((p) => html`<li><button type="submit" name="provider" value="${p.id}">Yes, sign in with ${p.displayName}</button></li>`)}</ul>`;
  return layout(
    'Confirm the terminal sign-in',
    html`<h1>${view.fields.redirect_uri === PASTED_CODE_REDIRECT ? 'Sign in to the stsgate command you started?' : 'Sign in to the stsgate command on this computer?'}</h1>
    <p class="confirm-code">It showed the code <strong><code>${view.code}</code></strong>.</p>
    <p>Continue only if you just ran <code>stsgate login</code> and your terminal shows this same code. If you did not, or the code differs, do not continue: someone else made this link, and continuing would sign them in as you.</p>
    <form method="post" action="/cli/login">
      ${Object.entries(view.fields).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
      <input type="hidden" name="form_token" value="${view.formToken}">
      ${buttons}
    </form>
    <p><a href="/">No, I did not start this</a></p>`,
    options,
  );
}

/** A role the account is granted, as the page lists it. */
export interface PageRole {
  name: string;
  arn: string;
  /** The longest session the role allows, in seconds. */
  maxSessionSeconds: number;
  /** `roles[].description`; absent: none. */
  description?: string;
}

/**
 * The end of a terminal login without a loopback address (`stsgate login --paste-code`): the one-time code
 * to paste into that terminal, which redeems it with its PKCE verifier. Useless to anyone without the
 * verifier; the page still says to give it to no one, since whoever started the login has that.
 */
export function terminalCodePage(view: { code: string; account: string }, options: PageOptions = {}): string {
  return layout(
    'Paste this code into your terminal',
    html`<h1>Signed in as ${view.account}</h1>
    <p>Paste this one-time code into the terminal where you ran <code>stsgate login --paste-code</code>:</p>
    <p class="pasted-code"><strong><code id="terminal-code">${view.code}</code></strong></p>
    <p>It works once, within five minutes. Do not give it to anyone else: together with the terminal that asked for it, it signs in as you.</p>`,
    options,
  );
}

/**
 * The start page for a signed-in person: who they are, their roles, and credentials for a chosen role.
 * `pendingRole`: a role asked for by a request that did not come from this page; it is chosen in the
 * picker, and the page says to press the button.
 */
/** A target the account may get a token for, as the page lists it. */
export interface PageTarget {
  name: string;
  kind: string;
  audience: string;
}

/**
 * What the page shows for a target (asked for on the page itself): its token, or for a broker target the
 * cloud's own credentials as shell `export` lines.
 */
export interface PageTargetToken {
  target: string;
  token: string;
  expiresAt: Date;
  /** A broker target's cloud: the text is its credentials (AWS or GCP `export` lines, an Azure access token), not a target token. */
  brokered?: 'aws' | 'gcp' | 'azure';
}

/** What the account page shows. */
export interface AccountView {
  identity: PageIdentity;
  csrfToken: string;
  /** The gateway's public URL (for the AWS profile). */
  gatewayUrl: string;
  roles: readonly PageRole[];
  chosenRole?: string;
  /** A role asked for by a request that did not come from this page: chosen in the picker, with a word to press the button. */
  pendingRole?: string;
  /** A role asked for that this account is not granted (as asked: a name or an ARN). */
  deniedRole?: string;
  credentials?: PageCredentials;
  targets?: readonly PageTarget[];
  pendingTarget?: string;
  targetToken?: PageTargetToken;
}

/**
 * The start page for a signed-in person: who they are, their roles (with what each is for, its ARN and
 * its longest session), and credentials for a chosen role. The credentials' heading takes the focus
 * (`autofocus`, no script), so keyboard and screen-reader users land on what they asked for.
 */
export function accountPage(view: AccountView, options: PageOptions = {}): string {
  const { identity, roles, credentials } = view;
  const label = accountLabel(identity);
  const claimRows = SHOWN_CLAIMS.filter((name) => identity.claims[name] !== undefined).map(
    (name) => html`<div><dt>${name}</dt><dd>${formatClaim(identity.claims[name])}</dd></div>`,
  );
  const selected = view.chosenRole ?? view.pendingRole ?? (roles.length === 1 ? roles[0]!.name : undefined);
  const picker =
    roles.length === 0
      ? html`<p>No rule grants this account a role.</p>`
      : html`<form method="get" action="/" class="roles">
          <fieldset>
            <legend>Choose a role</legend>
            ${roles.map(
              (role, i) => html`<div class="choice"><input type="radio" name="role" id="role-${i}" value="${role.name}" aria-describedby="role-${i}-about"${selected === role.name ? html` checked` : ''} required><label for="role-${i}">${role.name}</label>
              <div class="role-about" id="role-${i}-about">${role.description !== undefined ? html`<p class="role-description">${role.description}</p>` : ''}<p>ARN <code>${role.arn}</code>. Credentials last up to ${formatDuration(role.maxSessionSeconds)}.</p></div></div>`,
            )}
          </fieldset>
          <button type="submit">Show credentials</button>
        </form>
        ${view.pendingRole !== undefined ? html`<p class="status" role="status">Press Show credentials to see credentials for ${view.pendingRole}: they are shown only when asked for on this page, never for a link or a page elsewhere.</p>` : ''}`;
  return layout(
    credentials ? `Credentials for ${credentials.role}` : 'Your account',
    html`<h1>${credentials ? html`Credentials for ${credentials.role}` : 'Your account'}</h1>
    ${view.deniedRole !== undefined ? deniedRoleSection(view.deniedRole, roles, label) : ''}
    <section aria-labelledby="identity-heading">
      <h2 id="identity-heading">Identity</h2>
      <dl class="identity">
        <div><dt>Provider</dt><dd>${identity.providerName} (${identity.source})</dd></div>
        <div><dt>Subject</dt><dd><code>${identity.subject}</code></dd></div>
        ${claimRows}
      </dl>
    </section>
    <section aria-labelledby="roles-heading">
      <h2 id="roles-heading">Roles</h2>
      ${picker}
    </section>
    ${credentials ? credentialsSection(credentials, view.gatewayUrl) : ''}
    ${view.targets && view.targets.length > 0 ? targetsSection(view.targets, view.pendingTarget ?? view.targetToken?.target) : ''}
    ${view.targetToken ? targetTokenSection(view.targetToken) : ''}`,
    { ...options, signedIn: { label, csrfToken: view.csrfToken } },
  );
}

/** What a role name or ARN from a request may look like to be repeated on the page (IAM characters only: no sentence fits). */
const SHOWN_ROLE = /^(?:arn:aws:iam::\d{12}:role\/)?[\w+=,.@-]{1,64}$/;

/**
 * A role asked for that the rules do not grant this account, in plain words, with the roles it does have.
 * An unknown role reads the same as one withheld, so the page teaches nothing about other roles.
 */
function deniedRoleSection(asked: string, roles: readonly PageRole[], account: string): Html {
  const name = SHOWN_ROLE.test(asked) ? html`the role <strong>${asked}</strong>` : 'the role asked for';
  const others =
    roles.length === 0
      ? html`<p>This account is not allowed any role here at the moment.</p>`
      : html`<p>${roles.length === 1 ? 'The role this account may use is' : 'The roles this account may use are'}: ${roles.map((role, i) => html`${i === 0 ? '' : ', '}<strong>${role.name}</strong>`)}.</p>`;
  return html`<section class="denied" aria-labelledby="denied-heading">
      <h2 id="denied-heading" tabindex="-1" autofocus>Role not granted</h2>
      <p>This account is not allowed ${name}, so no credentials were made for it.</p>
      ${others}
      <p>If you need it, ask the gateway’s administrators and name this account: ${account}.</p>
    </section>`;
}

/** Seconds as people say them: `1 hour`, `1 hour 30 minutes`, `15 minutes`. */
export function formatDuration(seconds: number): string {
  const parts: [number, string][] = [
    [Math.floor(seconds / 3600), 'hour'],
    [Math.floor((seconds % 3600) / 60), 'minute'],
    [seconds % 60, 'second'],
  ];
  return parts
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n} ${unit}${n === 1 ? '' : 's'}`)
    .join(' ') || '0 seconds';
}

/** The targets (relying parties trusting the gateway as an issuer) this account may get a token for. */
function targetsSection(targets: readonly PageTarget[], selected: string | undefined): Html {
  return html`<section aria-labelledby="targets-heading">
      <h2 id="targets-heading">Targets</h2>
      <form method="get" action="/" class="roles">
        <fieldset>
          <legend>Get a token for</legend>
          ${targets.map(
            (target, i) => html`<div class="choice"><input type="radio" name="target" id="target-${i}" value="${target.name}"${selected === target.name ? html` checked` : ''} required><label for="target-${i}">${target.name} <small>(${target.kind}, audience <code>${target.audience}</code>)</small></label></div>`,
          )}
        </fieldset>
        <button type="submit">Show token</button>
      </form>
    </section>`;
}

const BROKERED_HEADING = { aws: 'AWS credentials', gcp: 'GCP access token', azure: 'Azure access token', none: 'Token' } as const;

function targetTokenSection(t: PageTargetToken): Html {
  return html`<section aria-labelledby="target-token-heading" class="credentials">
      <h2 id="target-token-heading" tabindex="-1" autofocus>${BROKERED_HEADING[t.brokered ?? 'none']} for ${t.target}</h2>
      <p>Valid until <time datetime="${t.expiresAt.toISOString()}">${t.expiresAt.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC')}</time>. Treat it like a password.</p>
      <pre id="target-token" tabindex="0" aria-labelledby="target-token-heading"><code>${t.token}</code></pre>
      <button type="button" class="copy" data-copy="target-token" hidden>${t.brokered === 'aws' || t.brokered === 'gcp' ? 'Copy export lines' : 'Copy token'}</button>
      <p class="status" role="status" aria-live="polite" id="copy-status"></p>
    </section>`;
}

function credentialsSection(c: PageCredentials, gatewayUrl: string): Html {
  const expiration = c.set.expiresAt;
  const outputs = PAGE_OUTPUTS.map(
    (output, i) => html`${i === 0 ? '' : new Html('\n      ')}<h3 id="${output.id}-heading">${headingWithCode(output.heading)}</h3>
      <pre id="${output.id}" tabindex="0" aria-labelledby="${output.id}-heading"><code>${output.render(c.set)}</code></pre>
      <button type="button" class="copy" data-copy="${output.id}" hidden>${output.copyLabel}</button>`,
  );
  return html`<section aria-labelledby="credentials-heading" class="credentials">
      <h2 id="credentials-heading" tabindex="-1" autofocus>Credentials</h2>
      <p>Valid until <time datetime="${expiration.toISOString()}">${expiration.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC')}</time>. Treat them like a password.</p>
      ${outputs}
      <h3 id="aws-profile-heading">AWS profile for <code>~/.aws/config</code></h3>
      <p>Instead of copying keys that expire: with this profile the AWS CLI and SDKs fetch fresh ones from the gateway themselves. Run <code>stsgate login --gateway ${gatewayUrl}</code> once, then use <code>--profile ${c.role}</code> (or <code>AWS_PROFILE=${c.role}</code>).</p>
      <pre id="aws-profile" tabindex="0" aria-labelledby="aws-profile-heading"><code>${awsConfigProfile(c.role, gatewayUrl)}</code></pre>
      <button type="button" class="copy" data-copy="aws-profile" hidden>Copy the profile</button>
      <p class="status" role="status" aria-live="polite" id="copy-status"></p>
    </section>`;
}

/** A heading's text, escaped, with each part in backticks shown as code. */
function headingWithCode(text: string): Html {
  return html`${text.split('`').map((part, i) => (i % 2 === 1 ? html`<code>${part}</code>` : part))}`;
}

/**
 * The answer to the terminal confirmation's POST: on to the provider by a refresh, not a redirect.
 * CSP `form-action 'self'` also governs the redirects that follow a form submission (Chromium blocks a
 * 303 from the form's POST to another origin), and the provider may redirect further; a refresh is a
 * new navigation. The link is there for browsers that ignore refreshes.
 */
export function continuePage(location: URL, providerName: string, options: PageOptions = {}): string {
  return layout(
    `Continuing to ${providerName}`,
    html`<h1>Continuing to ${providerName}…</h1>
    <p>If nothing happens, <a href="${location.href}">continue to ${providerName}</a>.</p>`,
    { ...options, refreshTo: location.href },
  );
}

/** A directory provider's sign-in form (`/login/<id>/password`). */
export interface PasswordForm {
  providerId: string;
  providerName: string;
  /** The login transaction's state, sent back as a hidden field. */
  state: string;
  /** The form token, also held in this browser's form cookie. */
  formToken: string;
  /** The username typed last time (never the password). */
  username?: string;
  /** Why the last attempt failed, in words. */
  error?: string;
}

/**
 * The sign-in form of a directory provider: username and password, posted back to the same address. The
 * page says which directory the password goes to, since it is typed into stsgate, not the directory.
 */
export function passwordPage(view: PasswordForm, options: PageOptions = {}): string {
  const action = `/login/${encodeURIComponent(view.providerId)}/password`;
  return layout(
    `Sign in with ${view.providerName}`,
    html`<h1>Sign in with ${view.providerName}</h1>
    <p>Type your ${view.providerName} username and password. stsgate checks them with the directory and keeps neither.</p>
    ${view.error !== undefined ? html`<p class="error" role="alert" id="form-error">${view.error}</p>` : ''}
    <form method="post" action="${action}" class="password">
      <input type="hidden" name="state" value="${view.state}">
      <input type="hidden" name="form_token" value="${view.formToken}">
      <p><label for="username">Username</label><br>
      <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="256" value="${view.username ?? ''}"${view.error !== undefined ? html` aria-describedby="form-error"` : ''}></p>
      <p><label for="password">Password</label><br>
      <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"></p>
      <p><button type="submit">Sign in</button></p>
    </form>
    <p><a href="/">Cancel</a></p>`,
    options,
  );
}

/** Titles of error pages, by status. */
function errorTitle(err: GatewayError): string {
  if (err instanceof LoginFailure && err.reason === 'no_role') return 'No access for this account';
  if (err instanceof LoginFailure) return 'Sign-in failed';
  if (err.status === 404) return 'Not found';
  if (err.status === 429) return 'Too many requests';
  if (err.status === 401 || err.status === 403) return 'Access denied';
  if (err.status >= 500) return 'Something went wrong';
  return 'The request could not be completed';
}

/**
 * The HTML error page (the error middleware's `html` format). A LoginFailure's message is written for
 * people and shown even for 502/503 (it names the provider, never internals); any other 5xx shows the
 * generic public message. The request id lets an operator find the private detail in the log.
 */
export function errorPage(err: GatewayError, requestId: string, options: PageOptions = {}): string {
  const message = err instanceof LoginFailure ? err.message : err.publicMessage;
  return layout(
    errorTitle(err),
    html`<h1>${errorTitle(err)}</h1>
    <p class="error">${message}</p>
    <p><a href="/">Back to the start page</a></p>
    <p class="request-id">Request id: <code>${requestId}</code></p>`,
    options,
  );
}

function formatClaim(value: unknown): string {
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : value.map((v) => String(v)).join(', ');
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** `/assets/<name>`: the page's stylesheet and script. */
export const ASSETS: Readonly<Record<string, { type: string; body: string }>> = {
  'stsgate.css': {
    type: 'text/css; charset=utf-8',
    // Colours meet WCAG 2.2 AA contrast (4.5:1 for text) on their backgrounds. Focus is always visible, and
    // the ring has at least 3:1 against every background it sits on (SC 1.4.11 non-text contrast: 6.4:1 on
    // --bg, 5.8:1 on --panel; test/browser measures it). A heading that takes the focus when the page
    // opens (autofocus) shows the ring too, so sighted keyboard users see where they landed.
    body: `:root { color-scheme: light; --fg: #1b1f24; --muted: #4a535e; --bg: #ffffff; --panel: #f3f5f7; --accent: #0b57d0; --accent-fg: #ffffff; --error: #a3141b; --focus: #0b57d0; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header, main, footer { max-width: 52rem; margin: 0 auto; padding: 1rem 1.25rem; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; justify-content: space-between; border-bottom: 1px solid #d0d7de; }
header nav { display: flex; gap: 1rem; align-items: center; }
header form { margin: 0; }
.brand { margin: 0; font-weight: 700; font-size: 1.25rem; }
.brand a { color: var(--fg); text-decoration: none; }
.who { margin: 0; color: var(--muted); }
footer { color: var(--muted); font-size: 0.875rem; }
a { color: var(--accent); }
.skip { position: absolute; left: -999px; top: 0; padding: 0.5rem 1rem; background: var(--accent); color: var(--accent-fg); }
.skip:focus { left: 0.5rem; }
:focus-visible, [autofocus]:focus { outline: 3px solid var(--focus); outline-offset: 2px; }
.providers { list-style: none; padding: 0; display: grid; gap: 0.75rem; max-width: 22rem; }
.button, button { display: inline-block; padding: 0.6rem 1.1rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: var(--accent-fg); font: inherit; font-weight: 600; text-decoration: none; cursor: pointer; }
button.secondary, button.copy { background: var(--bg); color: var(--accent); }
.identity { display: grid; gap: 0.25rem; }
.identity div { display: grid; grid-template-columns: 10rem 1fr; gap: 1rem; }
.identity dt { font-weight: 600; color: var(--muted); }
.identity dd { margin: 0; overflow-wrap: anywhere; }
fieldset { border: 1px solid #d0d7de; border-radius: 6px; margin: 0 0 1rem; }
.choice { padding: 0.25rem 0; }
.choice label { margin-left: 0.5rem; font-weight: 600; }
.role-about { margin: 0 0 0.5rem 1.9rem; color: var(--muted); font-size: 0.875rem; }
.role-about p { margin: 0; overflow-wrap: anywhere; }
.role-about .role-description { color: var(--fg); }
.denied, .signed-out { margin: 1rem 0; padding: 0.1rem 1rem; border-left: 4px solid var(--accent); background: var(--panel); }
.denied { border-left-color: var(--error); }
pre { background: var(--panel); padding: 1rem; border-radius: 6px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.error { color: var(--error); font-weight: 600; overflow-wrap: anywhere; }
.request-id, .status { color: var(--muted); font-size: 0.875rem; }
.confirm-code { font-size: 1.25rem; }
.confirm-code code { letter-spacing: 0.1em; }
.notice { background: #fff3cd; border-bottom: 3px solid #a15c00; color: #3d2a00; font-weight: 700; text-align: center; }
.notice p { margin: 0; padding: 0.6rem 1.25rem; }
`,
  },
  'stsgate.js': {
    type: 'text/javascript; charset=utf-8',
    // Progressive enhancement only: without it the credentials are still there to select and copy.
    body: `'use strict';
document.addEventListener('DOMContentLoaded', function () {
  var status = document.getElementById('copy-status');
  document.querySelectorAll('button[data-copy]').forEach(function (button) {
    var source = document.getElementById(button.getAttribute('data-copy'));
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener('click', function () {
      navigator.clipboard.writeText(source.textContent).then(function () {
        if (status) status.textContent = 'Copied to the clipboard.';
      }, function () {
        if (status) status.textContent = 'Copying failed: select the text and copy it instead.';
      });
    });
  });
});
`,
  },
};

/**
 * The pages of stsgate's OpenID Provider (src/op/): oidc-provider hands over its forms (hidden fields
 * only), and these pages add the visible fields and buttons, tied to the form by its id (`form=`).
 * Their CSP leaves out form-action: after a submit the OP redirects to the client's registered URI,
 * another origin, which form-action 'self' would block.
 */
export const OP_PAGE_CSP = PAGE_CSP.replace("form-action 'self'; ", '');

/** The id oidc-provider gives a form it hands over (`<form id="op.logoutForm" ...>`). */
function formId(form: string): string {
  return /id="([^"]+)"/.exec(form)?.[1] ?? '';
}

/** The OP's pages, with the notice every page carries. */
export function openIdProviderPages(options: PageOptions = {}) {
  return {
    csp: OP_PAGE_CSP,
    deviceCodeInput(form: string, error?: string): string {
      const id = formId(form);
      // The form's own text field (with an inline handler the CSP would refuse) gives way to a labelled one.
      const field = /<input\s[^>]*name="user_code"[^>]*>(?:<\/input>)?/.exec(form);
      const value = field === null ? undefined : /value="([^"]*)"/.exec(field[0])?.[1];
      const hidden = field === null ? form : form.replace(field[0], '');
      return layout(
        'Connect a device',
        html`<h1>Connect a device</h1>
        ${new Html(hidden)}
        ${error !== undefined ? html`<p class="error" role="alert">${error}</p>` : ''}
        <p>Type the code the device or command shows you.</p>
        <p><label for="user-code">Code</label>
        <input id="user-code" form="${id}" name="user_code" ${new Html(value !== undefined ? `value="${value}" ` : '')}autocomplete="off" autocapitalize="characters" spellcheck="false" required autofocus></p>
        <p><button type="submit" form="${id}">Continue</button></p>`,
        options,
      );
    },
    deviceCodeConfirm(form: string, clientName: string, userCode: string): string {
      const id = formId(form);
      return layout(
        'Connect a device',
        html`<h1>Connect ${clientName}?</h1>
        ${new Html(form)}
        <p>The device showing the code <strong><code>${userCode}</code></strong> asks to sign in as you with <strong>${clientName}</strong>. Continue only if you started this yourself, on a device you trust.</p>
        <p><button type="submit" form="${id}">Continue</button>
        <button type="submit" form="${id}" name="abort" value="yes" class="secondary">Cancel</button></p>`,
        options,
      );
    },
    deviceDone(clientName: string | undefined): string {
      return layout('Device connected', html`<h1>Device connected</h1><p>${clientName ?? 'The device'} is signed in. You can close this page and go back to it.</p>`, options);
    },
    logoutConfirm(form: string, clientName: string | undefined): string {
      const id = formId(form);
      return layout(
        'Sign out',
        html`<h1>Sign out</h1>
        ${new Html(form)}
        <p>${clientName !== undefined ? html`<strong>${clientName}</strong> asks to sign you out.` : 'An application asks to sign you out.'} Sign out of this gateway too, ending every application’s sign-in through it in this browser?</p>
        <p><button type="submit" form="${id}" name="logout" value="yes">Sign out everywhere</button>
        <button type="submit" form="${id}" class="secondary">Only ${clientName ?? 'that application'}</button></p>`,
        options,
      );
    },
    loggedOut(): string {
      return layout('Signed out', html`<h1>Signed out</h1><p>You have been signed out.</p><p><a href="/">Sign in again</a></p>`, options);
    },
    error(error: string, description: string | undefined): string {
      // RFC 6749 §5.2 error codes and descriptions are ASCII the OP wrote; they are escaped like any text.
      return layout('Sign-in failed', html`<h1>Sign-in failed</h1><p class="error" role="alert">${description ?? 'The request could not be completed.'}</p><p>Error: <code>${error}</code></p><p>Start again from the application.</p>`, options);
    },
  };
}
