// Leak detection for the test suite. test/run.mjs takes a snapshot before the
// tests and compares after them: mounts under the run's scratch root or
// /tmp/tspod-test*, processes that still run from there, new named network
// namespaces, new network links, new packet-filter rules, new CNI (host-local)
// address leases, new tspod cgroups, new /tmp/tspod-test* entries. Harness
// teardowns that had to clean up after a test record a leak file too, so a test
// that leaks fails the suite even though the mess is gone.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { TEST_DATA_DIR, TMP_TEST_PREFIX } from './paths.js';
import {
  cgroupPids,
  killPids,
  listCgroups,
  listLeases,
  listLinks,
  listNetns,
  listRules,
  listTmpPrefixed,
  mountsUnder,
  processesReferencing,
  removeCgroups,
  unmountAll,
  type PathPattern,
} from './sys.js';

export type LeakKind = 'mount' | 'process' | 'netns' | 'link' | 'cgroup' | 'tmp' | 'rule' | 'lease' | 'recorded';

export interface Leak {
  kind: LeakKind;
  detail: string;
  /** What cleanup needs: a pid, a mount point, a netns name, a path. */
  target?: string | number;
}

export interface Snapshot {
  /** Path patterns watched (test/data, the run's scratch root, /tmp/tspod-test*). */
  patterns: PathPattern[];
  /** Entries of test/data before the run (leftovers outside the run's root are reported, not failed). */
  dataEntries: string[];
  mounts: string[];
  pids: number[];
  netns: string[];
  links: string[];
  /** iptables/ip6tables/nft rules and chains (listRules). */
  rules: string[];
  /** host-local lease files (listLeases). */
  leases: string[];
  cgroups: string[];
  tmp: string[];
  /** Where harness teardowns record leaks for this run. */
  leakDir?: string;
}

/** tspod's cgroups: a `tspod` directory and everything below it, in any hierarchy. */
const CGROUP_RE = /(^|\/)tspod(\/|$)/;
const POD_ID_RE = /[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}/i;

/** What exists now; `root` is the run's scratch root (TSPOD_TEST_ROOT). */
export function takeSnapshot(root: string): Snapshot {
  const patterns = [...new Set([TEST_DATA_DIR, root])].filter((p, _i, all) => !all.some((q) => q !== p && p.startsWith(q + '/')));
  patterns.push(`${TMP_TEST_PREFIX}*`);
  return {
    patterns,
    dataEntries: listDataEntries(),
    mounts: mountsUnder(patterns).map((m) => m.mountPoint),
    pids: processesReferencing(patterns).map((p) => p.pid),
    netns: listNetns(),
    links: listLinks(),
    rules: listRules(),
    leases: listLeases().map((l) => l.file),
    cgroups: listCgroups(CGROUP_RE),
    tmp: listTmpPrefixed(TMP_TEST_PREFIX),
    leakDir: path.join(root, 'leaks'),
  };
}

/**
 * Scratch roots of other test runs that are still going (test/data/run-…-PID or
 * adhoc-PID with PID alive): what lives there is theirs, not this run's leak.
 */
function otherLiveRoots(): string[] {
  const ownRoot = process.env.TSPOD_TEST_ROOT ? path.resolve(process.env.TSPOD_TEST_ROOT) : undefined;
  let names: string[];
  try {
    names = fs.readdirSync(TEST_DATA_DIR);
  } catch {
    return [];
  }
  return names
    .map((n) => ({ n, pid: Number(/^(?:run-.*|adhoc)-(\d+)$/.exec(n)?.[1]) }))
    .filter(({ pid }) => pid && pid !== process.pid && pid !== process.ppid && fs.existsSync(`/proc/${pid}`))
    .map(({ n }) => path.join(TEST_DATA_DIR, n))
    .filter((r) => !ownRoot || path.resolve(r) !== ownRoot);
}

/** Everything that appeared since `before` and is still there. */
export function findLeaks(before: Snapshot): Leak[] {
  const leaks: Leak[] = [];
  const had = <T>(xs: T[]): Set<T> => new Set(xs);
  const others = otherLiveRoots();
  const theirs = (text: string) => others.some((r) => text.includes(`${r}/`) || text.endsWith(r));
  const oldMounts = had(before.mounts);
  for (const m of mountsUnder(before.patterns)) {
    if (theirs(m.mountPoint)) continue;
    if (!oldMounts.has(m.mountPoint)) leaks.push({ kind: 'mount', detail: `${m.mountPoint} (${m.fsType} from ${m.source})`, target: m.mountPoint });
  }
  for (const p of processesReferencing(before.patterns, had(before.pids))) {
    if (theirs(`${p.why} ${p.cmdline}`)) continue;
    leaks.push({ kind: 'process', detail: `pid ${p.pid} (${p.why}): ${p.cmdline.slice(0, 300)}`, target: p.pid });
  }
  const oldNetns = had(before.netns);
  for (const n of listNetns()) if (!oldNetns.has(n)) leaks.push({ kind: 'netns', detail: `network namespace ${n}`, target: n });
  leaks.push(...newRules(before.rules));
  leaks.push(...newLeases(before.leases));
  const oldLinks = had(before.links);
  for (const l of listLinks()) if (!oldLinks.has(l)) leaks.push({ kind: 'link', detail: `network interface ${l}`, target: l });
  // A new tspod cgroup is a leak when it is a pod's (a UUID in its path:
  // tspod/<uuid>, its init and app-<name>), or has processes of this run; the
  // shared parent tspod keeps (tspod/) is not. A pod cgroup whose processes are
  // all someone else's (a pod another run or a user started, running now) is theirs.
  const oldCg = had(before.cgroups);
  const ours = new Set(processesReferencing(before.patterns).filter((p) => !theirs(`${p.why} ${p.cmdline}`)).map((p) => p.pid));
  for (const c of listCgroups(CGROUP_RE)) {
    if (oldCg.has(c)) continue;
    const pids = cgroupTreePids(c);
    const mine = pids.some((p) => ours.has(p));
    if (pids.length && !mine) continue;
    if (mine || POD_ID_RE.test(c)) leaks.push({ kind: 'cgroup', detail: `cgroup ${c}${mine ? ' (with processes)' : ''}`, target: c });
  }
  const oldTmp = had(before.tmp);
  for (const t of listTmpPrefixed(TMP_TEST_PREFIX)) if (!oldTmp.has(t)) leaks.push({ kind: 'tmp', detail: `${t} was left behind`, target: t });
  if (before.leakDir) leaks.push(...readRecordedLeaks(before.leakDir));
  return leaks;
}

/** The pids in a cgroup and in every cgroup below it. */
function cgroupTreePids(dir: string): number[] {
  const out = cgroupPids(dir);
  try {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(...cgroupTreePids(path.join(dir, e.name)));
  } catch {
    /* gone */
  }
  return out;
}

/**
 * CNI portmap's shared chains and their hooks: made once, never removed (by any
 * CNI runtime), and holding nothing of a pod. Every per-pod rule (masquerade,
 * DNAT) carries its pod's id in a comment. Also shared and kept: tspod's guard
 * against route_localnet (stage1/contract/ports.ts), the default network's
 * masquerade (stage1/contract/masquerade.ts: kept while a pod of any run uses
 * the network, removed by tspod gc; test/network-core shows that), and the
 * built-in chains' policy lines that appear when a table gets its first rule.
 */
const SHARED_RULE_RE = /CNI-HOSTPORT-(DNAT|MASQ|SETMARK)\b|tspod: no 127\/8 from pods|tspod: masquerade network |:TSPOD-MASQ-\S+ | :(INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) \S+$/;

/** The working directories of every process: a running pod's helper works in its pod directory (named by its UUID). */
function processCwds(): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      out.push(fs.readlinkSync(`/proc/${pid}/cwd`));
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return out;
}

/**
 * Packet-filter rules and chains that appeared since `old`. Per-pod rules carry
 * their pod's id in a comment: those of a pod that still runs (a process works in
 * its directory: another test run's pod, or a leaked process reported as such)
 * are not counted, nor the chains they jump to.
 */
function newRules(old: readonly string[]): Leak[] {
  const had = new Set(old);
  const fresh = listRules().filter((r) => !had.has(r) && !(SHARED_RULE_RE.test(r) && !/ id: /.test(r)));
  if (!fresh.length) return [];
  const cwds = processCwds();
  const live = (r: string) => {
    const id = POD_ID_RE.exec(r)?.[0];
    return id !== undefined && cwds.some((c) => c.includes(id));
  };
  const liveChains = new Set(fresh.filter(live).map((r) => / -A (\S+) /.exec(r)?.[1]).filter(Boolean) as string[]);
  return fresh
    .filter((r) => !live(r) && !liveChains.has(/ :(\S+)/.exec(r)?.[1] ?? '') && !liveChains.has(/ -A (\S+) /.exec(r)?.[1] ?? ''))
    .map((r) => ({ kind: 'rule' as const, detail: `packet-filter rule ${r}` }));
}

/**
 * host-local leases that appeared since `old` and whose pod no longer runs (no
 * process works in a directory named by the lease's container id, the pod UUID):
 * an address a pod's exit or tspod gc should have released.
 */
function newLeases(old: readonly string[]): Leak[] {
  const had = new Set(old);
  const fresh = listLeases().filter((l) => !had.has(l.file));
  if (!fresh.length) return [];
  const cwds = processCwds();
  return fresh
    .filter((l) => !(l.containerId && cwds.some((c) => c.includes(l.containerId))))
    .map((l) => ({ kind: 'lease' as const, detail: `CNI address lease ${l.file} (container ${l.containerId || 'unknown'})`, target: l.file }));
}

/** Undoes what it safely can: kills leaked processes, unmounts leaked mounts, deletes new netns, removes leaked leases and leftover /tmp dirs. */
export function cleanupLeaks(leaks: readonly Leak[], before: Snapshot): string[] {
  const notes: string[] = [];
  const pids = leaks.filter((l) => l.kind === 'process').map((l) => Number(l.target));
  if (pids.length) {
    const left = killPids(pids);
    notes.push(`killed ${pids.length - left.length} leaked process(es)${left.length ? `; still alive: ${left.join(' ')}` : ''}`);
  }
  const mountPoints = leaks.filter((l) => l.kind === 'mount').map((l) => String(l.target));
  if (mountPoints.length) {
    const left = unmountAll(mountPoints).filter((m) => !before.mounts.includes(m.mountPoint));
    notes.push(`unmounted leaked mounts${left.length ? `; still mounted: ${left.map((m) => m.mountPoint).join(' ')}` : ''}`);
  }
  for (const l of leaks.filter((x) => x.kind === 'netns')) {
    const r = spawnSync('ip', ['netns', 'delete', String(l.target)], { stdio: 'ignore' });
    notes.push(`ip netns delete ${l.target}: ${r.status === 0 ? 'ok' : 'failed'}`);
  }
  // cgroups: kill what is in them, then remove them deepest first
  const cgroups = leaks.filter((l) => l.kind === 'cgroup').map((l) => String(l.target));
  if (cgroups.length) {
    const left = removeCgroups(cgroups);
    notes.push(`removed ${cgroups.length - left.length} leaked cgroup(s)${left.length ? `; could not remove: ${left.join('; ')}` : ''}`);
  }
  for (const l of leaks.filter((x) => x.kind === 'lease')) {
    fs.rmSync(String(l.target), { force: true });
    notes.push(`removed the lease ${l.target}`);
  }
  for (const l of leaks.filter((x) => x.kind === 'tmp')) {
    const t = String(l.target);
    if (mountsUnder([t]).length === 0) {
      fs.rmSync(t, { recursive: true, force: true });
      notes.push(`removed ${t}`);
    }
  }
  return notes;
}

let recorded = 0;

/** Called by harness teardowns that found (and cleaned up) something a test left behind. */
export function recordLeak(kind: LeakKind, detail: string): void {
  const root = process.env.TSPOD_TEST_ROOT;
  process.stderr.write(`test harness: LEAK (${kind}): ${detail}\n`);
  if (!root) return;
  const dir = path.join(root, 'leaks');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${process.pid}-${++recorded}.json`), JSON.stringify({ kind, detail, pid: process.pid, at: new Date().toISOString() }) + '\n');
}

/** The leaks recorded by teardowns during the run. */
export function readRecordedLeaks(leakDir: string): Leak[] {
  let names: string[];
  try {
    names = fs.readdirSync(leakDir).sort();
  } catch {
    return [];
  }
  const out: Leak[] = [];
  for (const n of names) {
    try {
      const j = JSON.parse(fs.readFileSync(path.join(leakDir, n), 'utf8')) as { kind: string; detail: string; pid: number };
      out.push({ kind: 'recorded', detail: `${j.kind} (cleaned up at teardown, test process ${j.pid}): ${j.detail}` });
    } catch {
      out.push({ kind: 'recorded', detail: `unreadable leak record ${n}` });
    }
  }
  return out;
}

/** One line per leak, for the runner's report. */
export function formatLeaks(leaks: readonly Leak[]): string {
  return leaks.map((l) => `  - [${l.kind}] ${l.detail}`).join('\n');
}

function listDataEntries(): string[] {
  try {
    return fs.readdirSync(TEST_DATA_DIR).map((n) => path.join(TEST_DATA_DIR, n));
  } catch {
    return [];
  }
}

/** New entries of test/data other than `root` (files tests left behind: worth a note, not a failure). */
export function newDataEntries(before: Snapshot, root: string): string[] {
  const old = new Set(before.dataEntries);
  return listDataEntries().filter((p) => !old.has(p) && p !== root);
}
