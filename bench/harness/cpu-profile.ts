/**
 * Summarizes a V8 `.cpuprofile` (written by `node --cpu-prof`): self time per function, self time per
 * package, and inclusive time of the functions that hold most of it. Only the main thread is sampled:
 * work Node runs on its thread pool (WebCrypto jobs) shows up as time the main thread did not spend.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

/** The subset of the `.cpuprofile` format read here. */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  where: string;
  group: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  /** Sampled time not idle: what the process did. */
  busyMs: number;
  bySelf: FunctionTime[];
  byGroup: { group: string; ms: number; share: number }[];
  byInclusive: FunctionTime[];
}

/** Where a frame's code comes from: a package, Node itself, stsgate, or a V8 pseudo-frame. */
export function groupOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'V8 garbage collector';
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(program)') return 'V8 / native (program)';
    return `native: ${functionName || '(anonymous)'}`;
  }
  if (url.startsWith('node:')) return 'node internals';
  // The benchmark runs stsgate compiled under node_modules/.cache/stsgate-bench/build/.
  if (url.includes('/stsgate-bench/build/src/')) return 'stsgate (src)';
  if (url.includes('/stsgate-bench/build/bench/')) return 'bench harness';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1]!;
  if (url.includes('/src/')) return 'stsgate (src)';
  if (url.includes('/bench/')) return 'bench harness';
  return 'other';
}

function shortWhere(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, '').replace(/^.*\/stsgate-bench\/build\//, '/');
  const tail = /node_modules\/(.*)$/.exec(url)?.[1] ?? /\/(src\/.*|bench\/.*)$/.exec(url)?.[1] ?? url;
  return tail === '' ? '' : `${tail}:${frame.lineNumber + 1}`;
}

function keyOf(frame: CallFrame): string {
  return `${frame.functionName || '(anonymous)'}\u0000${shortWhere(frame)}`;
}

/**
 * Reduces a profile to the tables of the report; `top` rows per table. `window` (µs on the monotonic
 * clock that both V8's profile and `process.hrtime` use) keeps only the samples of the measured pass,
 * leaving out start-up (module loading, compilation) and warm-up.
 */
export function summarizeProfile(profile: CpuProfile, window?: { fromUs: number; toUs: number }, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const selfUs = new Map<string, { frame: CallFrame; us: number }>();
  const inclusiveUs = new Map<string, { frame: CallFrame; us: number }>();
  const groupUs = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  // timeDeltas[i] is the time before sample i; attribute the time up to the next sample to sample i.
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    const us = profile.timeDeltas[i + 1] ?? 0;
    const leaf = byId.get(profile.samples[i]!);
    if (!leaf || us <= 0) continue;
    totalUs += us;
    const group = groupOf(leaf.callFrame);
    if (group === '(idle)') {
      idleUs += us;
      continue;
    }
    groupUs.set(group, (groupUs.get(group) ?? 0) + us);
    const key = keyOf(leaf.callFrame);
    const self = selfUs.get(key) ?? { frame: leaf.callFrame, us: 0 };
    self.us += us;
    selfUs.set(key, self);
    // Inclusive: every distinct function on the stack gets the sample once (recursion counted once).
    const seen = new Set<string>();
    let depth = 0;
    for (let id: number | undefined = leaf.id; id !== undefined && depth < 10_000; id = parent.get(id), depth++) {
      const node = byId.get(id)!;
      if (node.callFrame.functionName === '(root)') break;
      const k = keyOf(node.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      const inclusive = inclusiveUs.get(k) ?? { frame: node.callFrame, us: 0 };
      inclusive.us += us;
      inclusiveUs.set(k, inclusive);
    }
  }
  const busyUs = totalUs - idleUs;
  const rows = (map: Map<string, { frame: CallFrame; us: number }>) =>
    [...map.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(({ frame, us }) => ({
        name: frame.functionName || '(anonymous)',
        where: shortWhere(frame),
        group: groupOf(frame),
        ms: us / 1000,
        share: busyUs === 0 ? 0 : us / busyUs,
      }));
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    bySelf: rows(selfUs),
    byGroup: [...groupUs.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([group, us]) => ({ group, ms: us / 1000, share: busyUs === 0 ? 0 : us / busyUs })),
    byInclusive: rows(inclusiveUs),
  };
}
