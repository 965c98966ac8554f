/**
 * Prints the self-time and inclusive-time tables of a `.cpuprofile` (the ones `npm run bench -- --profile`
 * keeps in the temporary directory, or any `node --cpu-prof` output):
 *
 *   npx tsx bench/profile-summary.ts /tmp/stsgate-fresh.cpuprofile [fromUs toUs] [rows]
 *
 * `fromUs toUs` (monotonic microseconds, printed by the profile run) keep only the measured window.
 */
import { readFileSync } from 'node:fs';
import { summarizeProfile, type CpuProfile } from './harness/cpu-profile.js';

const [file, from, to, rows = '40'] = process.argv.slice(2);
if (!file) {
  console.error('usage: npx tsx bench/profile-summary.ts FILE [fromUs toUs] [rows]');
  process.exit(2);
}
const window = from !== undefined && to !== undefined ? { fromUs: Number(from), toUs: Number(to) } : undefined;
const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, window, Number(rows));
const line = (name: string, where: string, ms: number, share: number) =>
  console.log(`${name.slice(0, 40).padEnd(40)} ${where.slice(0, 55).padEnd(55)} ${ms.toFixed(0).padStart(7)} ms ${(share * 100).toFixed(1).padStart(5)}%`);
console.log(`main thread busy ${summary.busyMs.toFixed(0)} of ${summary.totalMs.toFixed(0)} ms sampled`);
console.log('\nself time by origin');
for (const g of summary.byGroup) line(g.group, '', g.ms, g.share);
console.log('\nself time');
for (const f of summary.bySelf) line(f.name, f.where || f.group, f.ms, f.share);
console.log('\ninclusive time');
for (const f of summary.byInclusive) line(f.name, f.where || f.group, f.ms, f.share);
