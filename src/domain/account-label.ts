/**
 * Who signed in, for the page header, the denial message and `stsgate login`'s answer: provider,
 * subject, and email or login (or a directory's username) when known.
 */
export function accountLabel(identity: { source: string; subject: string; claims: Readonly<Record<string, unknown>> }): string {
  const known = ['email', 'login', 'preferred_username', 'username'].map((k) => identity.claims[k]).find((v): v is string => typeof v === 'string' && v !== '');
  return known ? `${known} (${identity.source}:${identity.subject})` : `${identity.source}:${identity.subject}`;
}
