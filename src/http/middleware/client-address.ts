/**
 * The client address every request is counted and logged under (`ctx.ip`): the connection's own address,
 * unless the connection comes from one of `listen.trusted_proxies`. Then X-Forwarded-For is read from the
 * right, past every entry that is itself a trusted proxy: the first other entry is the address the
 * outermost trusted proxy saw. Everything further left was written by the client and is never believed,
 * and a client reaching the port directly (not from a trusted proxy) is never believed at all, so it
 * cannot rotate its address by writing the header.
 */
import { BlockList, isIP } from 'node:net';

/** The proxies whose X-Forwarded-For is believed, matched by node's BlockList (addresses and CIDR ranges). */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  /** `entries`: addresses (`127.0.0.1`, `fd00::1`) and CIDR ranges (`10.0.0.0/8`), as config validation left them. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [address = '', prefix] = entry.split('/');
      const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) this.#list.addAddress(address, type);
      else this.#list.addSubnet(address, Number(prefix), type);
    }
    this.#empty = entries.length === 0;
  }

  /** Whether `address` is one of the trusted proxies (an IPv4-mapped IPv6 address matches its IPv4 entry). */
  trusts(address: string): boolean {
    const version = isIP(address);
    return version !== 0 && this.#list.check(address, version === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The client's address for a connection from `peer` carrying `forwardedFor` (the X-Forwarded-For value,
   * repeated headers joined by commas). An entry that is not an address ends the walk at the last trusted
   * hop before it: nothing a trusted proxy did not vouch for is taken.
   */
  clientAddress(peer: string, forwardedFor: string | undefined): string {
    if (this.#empty || forwardedFor === undefined || !this.trusts(peer)) return peer;
    let client = peer;
    const entries = forwardedFor.split(',').map((entry) => entry.trim());
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i]!;
      if (isIP(entry) === 0) break;
      client = entry;
      if (!this.trusts(entry)) break;
    }
    return client;
  }
}
