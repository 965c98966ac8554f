/**
 * The broker's one call across replicas, at the interleaving a burst test only meets under load: replica
 * B reads the cache a moment before replica A stores its answer and frees the fetch marker, then takes the
 * freed marker. B must find A's answer in the cache rather than call the cloud a second time. And the
 * cached answer's lifetime, which a slow call must not stretch.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Broker, type Fetched, type Upstream, type Upstreams } from '../../src/credentials/broker.js';
import { SecretBox } from '../../src/credentials/secret-box.js';
import type { Identity, Role } from '../../src/domain/types.js';
import type { GcpBrokerSpec, TargetSpec } from '../../src/rules/target-claims.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import type { Store } from '../../src/store/store.js';

const identity: Identity = { source: 'ci', subject: 'repo:acme/app', claims: {} };
const role = { name: 'deployer' } as Role;
const spec = { cloud: 'gcp', timeoutSeconds: 5 } as unknown as GcpBrokerSpec;
const target = { name: 'gcp-fed', kind: 'gcp', broker: spec } as unknown as TargetSpec;

/** A cloud that counts its calls and answers a new token each time. */
function countingCloud() {
  let calls = 0;
  const gcp: Upstream<GcpBrokerSpec, { lifetimeSeconds: number }> = {
    prepare: () => ({ lifetimeSeconds: 3600 }),
    endpointOf: () => 'https://sts.googleapis.com',
    call: async (): Promise<Fetched> => {
      calls += 1;
      return { cloud: 'gcp', accessToken: `token-${calls}`, scopes: [], expiresAt: new Date(Date.now() + 3_600_000) } as Fetched;
    },
  };
  return { upstreams: { gcp } as unknown as Upstreams, calls: () => calls };
}

/** `store`, except that the first read of a brokered set misses: the read that happened just before the other replica stored it. */
function readingJustBefore(store: Store): Store {
  let first = true;
  return new Proxy(store, {
    get(target, name) {
      if (name !== 'getMany') {
        const value = Reflect.get(target, name, target) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      }
      return async (keys: string[]) => {
        const values = await target.getMany(keys);
        if (first && keys[0]?.startsWith('brk:')) {
          first = false;
          return [undefined, ...values.slice(1)];
        }
        return values;
      };
    },
  });
}

describe('the broker across replicas', () => {
  it('a replica that takes the marker just after another stored its answer answers from the cache', async () => {
    const store = new MemoryStore();
    const box = new SecretBox(randomBytes(32));
    const cloud = countingCloud();
    const targets = { preview: () => ({ claims: {} }), mint: () => ({ token: 'target-token' }) } as never;
    const replicaA = new Broker({ store, box, targets, upstreams: cloud.upstreams });
    const replicaB = new Broker({ store: readingJustBefore(store), box, targets, upstreams: cloud.upstreams });

    const first = await replicaA.credentials(target, identity, role);
    const second = await replicaB.credentials(target, identity, role);

    expect(cloud.calls()).toBe(1);
    expect(second).toMatchObject({ cached: true, accessToken: (first as { accessToken: string }).accessToken });
    await store.close();
  });
});

describe('the broker\'s cached answer', () => {
  it('never outlives the credentials in it, however long the call took', async () => {
    // One clock for the broker and the store, moved only by the call: the record's expiry is then exact
    // arithmetic, not a race with the millisecond ticking between the broker's reading of the clock and
    // the store's (a relative TTL is applied when the store receives it, as Redis does too).
    let clock = Date.UTC(2026, 11, 5, 8, 0, 0);
    const now = () => clock;
    const store = new MemoryStore({ now });
    // A cloud that stamps its answer at the end of a slow call, as a real one may (expiry = its now + the lifetime).
    const gcp: Upstream<GcpBrokerSpec, { lifetimeSeconds: number }> = {
      prepare: () => ({ lifetimeSeconds: 3600 }),
      endpointOf: () => 'https://sts.googleapis.com',
      call: async (): Promise<Fetched> => {
        clock += 2_000;
        return { cloud: 'gcp', accessToken: 'slow-token', scopes: [], expiresAt: new Date(clock + 3_600_000) } as Fetched;
      },
    };
    const targets = { preview: () => ({ claims: {} }), mint: () => ({ token: 'target-token' }) } as never;
    const broker = new Broker({ store, box: new SecretBox(randomBytes(32)), targets, upstreams: { gcp } as unknown as Upstreams, now });

    const answer = await broker.credentials(target, identity, role);
    const [key, ...others] = await store.keysWithPrefix('brk:');
    expect(others).toEqual([]);
    // The record expires exactly when the credentials do (measured from before the call, 2 s later).
    expect(clock + (await store.ttl(key!))!).toBe(answer.expiresAt.getTime());
    await store.close();
  });
});
