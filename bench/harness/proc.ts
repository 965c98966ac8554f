/**
 * What the run reads of processes and of the machine from /proc (Linux): CPU time, memory, and a server's
 * process tree (a cluster primary and its workers).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of /proc/<pid>/stat and /proc/stat times on Linux. */
export const CLOCK_TICKS = 100;

/** The fields of /proc/<pid>/stat after the command name (field 3, `state`, is index 0), or undefined once it is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** User and system CPU of a process and all its threads, in clock ticks (/proc/<pid>/stat fields 14 and 15). */
export function cpuTicks(pid: number): { user: number; system: number } {
  const fields = statFields(pid);
  return fields ? { user: Number(fields[11]), system: Number(fields[12]) } : { user: 0, system: 0 };
}

/** When the process started (field 22, clock ticks since boot): with the pid, names one process even after its pid is reused. */
export function startTime(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields ? Number(fields[19]) : undefined;
}

/**
 * `root` and every process below it (children, their children...), root first. Found by each process's
 * parent pid in /proc/<pid>/stat: /proc/<pid>/task/<tid>/children needs a kernel built with
 * CONFIG_PROC_CHILDREN, which some (this machine's among them) are not.
 */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const parent = Number(statFields(Number(entry))?.[1]);
    if (!Number.isInteger(parent)) continue;
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** One field of /proc/<pid>/status, or undefined once the process is gone. */
function statusField(pid: number, name: string): string | undefined {
  try {
    return new RegExp(`^${name}:\\s+(.+)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** VmRSS (resident now) or VmHWM (peak resident over its life) of a process, in bytes; 0 once it is gone. */
export function memoryBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const kb = /^(\d+) kB$/.exec(statusField(pid, field) ?? '')?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

/** CPU time of the whole machine so far, all cores summed, in clock ticks: busy and in all (the first line of /proc/stat). */
export function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice: guest time is already in user and nice.
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** The CPUs a process may run on (`Cpus_allowed_list`, e.g. "0-1"), or "?" once it is gone. */
export function cpusAllowed(pid: number): string {
  return statusField(pid, 'Cpus_allowed_list') ?? '?';
}
