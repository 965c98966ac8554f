import { createHash } from 'node:crypto';
import type { Role } from './types.js';

/** What a role's configuration provides; the ARN is derived from the account id. */
export interface RoleDefinition {
  name: string;
  scopes: readonly string[];
  audiences: readonly string[];
  maxSessionSeconds: number;
  canAssume: readonly string[];
  sessionTags: Readonly<Record<string, string>>;
  /** Absent: none. */
  targets?: readonly string[];
  /** Absent: none. */
  description?: string;
}

const ROLE_ARN = /^arn:aws:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]+)$/;

/** The configured roles, found by name or by ARN `arn:aws:iam::<account_id>:role/<name>`. */
export class RoleCatalog {
  readonly #byName = new Map<string, Role>();
  readonly accountId: string;

  constructor(accountId: string, roles: readonly RoleDefinition[]) {
    this.accountId = accountId;
    for (const role of roles) {
      this.#byName.set(role.name, { ...role, targets: role.targets ?? [], arn: `arn:aws:iam::${accountId}:role/${role.name}`, id: roleId(accountId, role.name) });
    }
  }

  /** A role by its name. */
  byName(name: string): Role | undefined {
    return this.#byName.get(name);
  }

  /** A role by name or ARN; an ARN of another account names no role. */
  resolve(nameOrArn: string): Role | undefined {
    if (!nameOrArn.startsWith('arn:')) return this.byName(nameOrArn);
    const match = ROLE_ARN.exec(nameOrArn);
    if (!match || match[1] !== this.accountId) return undefined;
    return this.byName(match[2]!);
  }

  /** Every role, in configuration order. */
  all(): Role[] {
    return [...this.#byName.values()];
  }
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** A stable role id in AWS's shape (`AROA` + 17 characters), derived from the account and the role name. */
function roleId(accountId: string, name: string): string {
  const digest = createHash('sha256').update(`${accountId}:${name}`).digest();
  let id = 'AROA';
  for (let i = 0; i < 17; i++) id += BASE32[digest[i]! & 31];
  return id;
}
