/**
 * What an LDAP login's claims are built from: the user entry's attributes and the groups found, turned
 * into the profile the `ldap` definition's `claims:` point into (`user.*`, `groups`, `group_dns`,
 * `groups_truncated`). Pure.
 */

/** An attribute value as ldapts returns it. */
export type AttributeValue = string | string[] | Buffer | Buffer[] | undefined;

/** The user entry's attributes, by the names configured for each claim. */
export interface UserAttributes {
  /** `dn` (the entry's DN) or an attribute (`entryUUID`, `objectGUID`, `uid`). */
  id: string;
  username: string;
  email: string;
  name: string;
}

/** The first value of an attribute as text: binary `objectGUID` in its GUID form, other binary values in hex. */
export function attributeText(name: string, value: AttributeValue): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  if (Buffer.isBuffer(first)) return name.toLowerCase() === 'objectguid' && first.length === 16 ? formatObjectGuid(first) : first.toString('hex');
  return first === '' ? undefined : first;
}

/** Every value of an attribute as text (memberOf). */
export function attributeTexts(value: AttributeValue): string[] {
  const values = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return values.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v)).filter((v) => v !== '');
}

/**
 * MS-DTYP §2.3.4: a GUID's first three fields are little-endian in its 16 bytes, so `objectGUID` is shown
 * as AD shows it (`{3F2504E0-4F89-11D3-9A0C-0305E82C3301}` without braces, lower case).
 */
export function formatObjectGuid(bytes: Buffer): string {
  const hex = (from: number, to: number, reverse: boolean) => {
    const part = [...bytes.subarray(from, to)];
    return (reverse ? part.reverse() : part).map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  return `${hex(0, 4, true)}-${hex(4, 6, true)}-${hex(6, 8, true)}-${hex(8, 10, false)}-${hex(10, 16, false)}`;
}

/**
 * The value of a DN's first RDN (RFC 4514 §3): `cn=Ops\, EU,ou=Groups,dc=x` gives `Ops, EU`. Escaped
 * characters (`\,`, `\2C`, hex pairs of UTF-8) are unescaped; a multi-valued RDN gives its first value.
 */
export function firstRdnValue(dn: string): string {
  const equals = dn.indexOf('=');
  if (equals < 0) return dn;
  const bytes: number[] = [];
  for (let i = equals + 1; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === ',' || c === '+') break;
    if (c === '\\' && i + 1 < dn.length) {
      const pair = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(pair)) {
        bytes.push(parseInt(pair, 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(dn[i + 1]!, 'utf8'));
        i += 1;
      }
      continue;
    }
    bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8').trim();
}

/** Groups found for one user: DN (any case) -> name. */
export class GroupSet {
  readonly #byDn = new Map<string, { dn: string; name: string }>();

  /** Adds a group; returns false when it was already there. */
  add(dn: string, name?: string): boolean {
    const key = dn.toLowerCase();
    if (this.#byDn.has(key)) return false;
    this.#byDn.set(key, { dn, name: name ?? firstRdnValue(dn) });
    return true;
  }

  has(dn: string): boolean {
    return this.#byDn.has(dn.toLowerCase());
  }

  /** The DNs, in the order they were added. */
  dns(): string[] {
    return [...this.#byDn.values()].map((g) => g.dn);
  }

  get size(): number {
    return this.#byDn.size;
  }

  /** Names and DNs, sorted by name, at most `max` of each; `truncated` when there were more. */
  claims(max: number): { groups: string[]; group_dns: string[]; groups_truncated: boolean } {
    const all = [...this.#byDn.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.dn < b.dn ? -1 : 1));
    const kept = all.slice(0, max);
    return { groups: [...new Set(kept.map((g) => g.name))], group_dns: kept.map((g) => g.dn), groups_truncated: all.length > max };
  }
}

/** The profile the `ldap` definition's claims are read from. */
export function ldapProfile(user: { dn: string; id: string; username: string; email?: string; name?: string }, groups: GroupSet, maxGroups: number): Record<string, unknown> {
  return {
    user: {
      id: user.id,
      dn: user.dn,
      username: user.username,
      ...(user.email !== undefined ? { email: user.email } : {}),
      ...(user.name !== undefined ? { name: user.name } : {}),
    },
    ...groups.claims(maxGroups),
  };
}
