// Host inspection for the harness: mounts (/proc/self/mountinfo), processes
// (/proc/<pid>), network namespaces, links and cgroups; and the blunt tools
// to undo them (unmount, kill by pid). Synchronous on purpose: exit hooks use it.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

/**
 * A path pattern: a directory (matches it and everything below it), or, when it
 * ends in '*', a plain string prefix ('/tmp/tspod-test*').
 */
export type PathPattern = string;

export function matchesPath(p: string, patterns: readonly PathPattern[]): boolean {
  for (const pat of patterns) {
    if (pat.endsWith('*')) {
      if (p.startsWith(pat.slice(0, -1))) return true;
    } else {
      const dir = pat.replace(/\/+$/, '');
      if (p === dir || p.startsWith(dir + '/')) return true;
    }
  }
  return false;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export interface MountEntry {
  id: number;
  mountPoint: string;
  fsType: string;
  source: string;
}

/** The mounts of this process's mount namespace (the host's, for the tests). */
export function listMounts(): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-');
    out.push({
      id: Number(f[0]),
      mountPoint: unescapeMountinfo(f[4] ?? ''),
      fsType: sep > 0 ? (f[sep + 1] ?? '') : '',
      source: sep > 0 ? unescapeMountinfo(f[sep + 2] ?? '') : '',
    });
  }
  return out;
}

/** Mount points at or below any of the patterns, deepest first. */
export function mountsUnder(patterns: readonly PathPattern[]): MountEntry[] {
  return listMounts()
    .filter((m) => matchesPath(m.mountPoint, patterns))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length || b.id - a.id);
}

/** Unmounts everything at or below the patterns (lazily if it must). Returns what is still mounted. */
export function unmountAll(patterns: readonly PathPattern[]): MountEntry[] {
  for (let round = 0; round < 8; round++) {
    const left = mountsUnder(patterns);
    if (left.length === 0) return [];
    for (const m of left) {
      const r = spawnSync('umount', [m.mountPoint], { stdio: 'ignore' });
      if (r.status !== 0) spawnSync('umount', ['-l', m.mountPoint], { stdio: 'ignore' });
    }
  }
  return mountsUnder(patterns);
}

export interface ProcessRef {
  pid: number;
  cmdline: string;
  /** What ties it to the patterns: 'cmdline', 'cwd', 'root', 'exe', or 'mountns: <mount line>' (its mount namespace has mounts from there). */
  why: string;
}

function readlinkOr(p: string): string | undefined {
  try {
    return fs.readlinkSync(p);
  } catch {
    return undefined;
  }
}

/** Every process whose command line names, or whose cwd, root or executable lies under, one of the patterns. */
export function processesReferencing(patterns: readonly PathPattern[], exclude: ReadonlySet<number> = new Set()): ProcessRef[] {
  const out: ProcessRef[] = [];
  const needles = patterns.map((p) => (p.endsWith('*') ? p.slice(0, -1) : p.replace(/\/+$/, '')));
  const ownMntNs = readlinkOr('/proc/self/ns/mnt');
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid || exclude.has(pid)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue;
    }
    if (argv.length === 0) continue; // kernel threads and zombies
    let why = '';
    if (argv.some((a) => needles.some((n) => a.includes(n)))) why = 'cmdline';
    else {
      for (const link of ['cwd', 'root', 'exe']) {
        const target = readlinkOr(`/proc/${pid}/${link}`);
        if (target && target !== '/' && matchesPath(target.replace(/ \(deleted\)$/, ''), patterns)) {
          why = link;
          break;
        }
      }
    }
    // A process in its own mount namespace (a pod) after pivot_root: its
    // mounts still name where they came from (overlay lowerdirs, bind sources).
    if (!why) {
      const mntNs = readlinkOr(`/proc/${pid}/ns/mnt`);
      if (mntNs && ownMntNs && mntNs !== ownMntNs) {
        try {
          const mi = fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
          // The matching mount line goes into `why`, so that the leak check can
          // tell another live run's pod from this run's.
          const line = mi.split('\n').find((l) => needles.some((n) => l.includes(n)));
          if (line) why = `mountns: ${line.slice(0, 400)}`;
        } catch {
          // gone, or not ours to read
        }
      }
    }
    if (why) out.push({ pid, cmdline: argv.join(' '), why });
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** SIGKILLs the given pids and waits (up to timeoutMs) until they are gone. Returns the ones still alive. */
export function killPids(pids: readonly number[], timeoutMs = 5000): number[] {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + timeoutMs;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    left = left.filter(alive);
  }
  return left;
}

/** Names of the named network namespaces (/run/netns, what `ip netns list` shows). */
export function listNetns(): string[] {
  try {
    return fs.readdirSync('/run/netns').sort();
  } catch {
    return [];
  }
}

/** Names of the host's network interfaces. */
export function listLinks(): string[] {
  try {
    return fs.readdirSync('/sys/class/net').sort();
  } catch {
    return [];
  }
}

/** host-local's data directory (CNI plugins' IPAM): <network>/<address> per lease. */
export const CNI_LEASES_DIR = '/var/lib/cni/networks';

/** A host-local lease: its file and the container (for tspod, the pod UUID) on its first line. */
export interface CniLease {
  file: string;
  containerId: string;
}

/** Every host-local lease on the host (files named by an IPv4 or IPv6 address). */
export function listLeases(dir = CNI_LEASES_DIR): CniLease[] {
  const out: CniLease[] = [];
  let networks: string[];
  try {
    networks = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of networks) {
    let names: string[];
    try {
      names = fs.readdirSync(path.join(dir, n));
    } catch {
      continue;
    }
    for (const name of names) {
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(name) && !name.includes(':')) continue;
      const file = path.join(dir, n, name);
      let containerId = '';
      try {
        containerId = fs.readFileSync(file, 'utf8').split('\n')[0].trim();
      } catch {
        continue; // released meanwhile
      }
      out.push({ file, containerId });
    }
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

/**
 * The host's packet-filter rules and chains, one string per line, prefixed with
 * the tool and table (`iptables nat -A POSTROUTING …`), counters dropped:
 * iptables-save and ip6tables-save (nf_tables or legacy), and `nft list ruleset`
 * where nft is installed (its counters and handles dropped).
 */
export function listRules(): string[] {
  const out: string[] = [];
  for (const tool of ['iptables-save', 'ip6tables-save']) {
    const r = spawnSync(tool, [], { encoding: 'utf8' });
    if (r.status !== 0) continue;
    let table = '';
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('*')) table = line.slice(1);
      else if (line.startsWith('-A ') || line.startsWith(':')) out.push(`${tool} ${table} ${line.replace(/ \[\d+:\d+\]$/, '')}`);
    }
  }
  const nft = spawnSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
  if (nft.status === 0) {
    // iptables-nft's own tables are in iptables-save already
    let skip = false;
    for (const raw of nft.stdout.split('\n')) {
      const line = raw.trim().replace(/ counter packets \d+ bytes \d+/, ' counter').replace(/ # handle \d+$/, '');
      if (/^table /.test(line)) skip = /^table ip6? (filter|nat|mangle|raw|security) \{/.test(line);
      if (!skip && line && line !== '}') out.push(`nft ${line}`);
    }
  }
  return [...new Set(out)].sort();
}

export const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * cgroup directories (up to `depth` levels below /sys/fs/cgroup) whose path
 * below /sys/fs/cgroup matches `re`: with /(^|\/)tspod(\/|$)/, the tspod
 * parents and everything below them (`memory/tspod/<uuid>/app-x` too).
 */
export function listCgroups(re: RegExp, depth = 5): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string, d: number): void => {
    let ents: fs.Dirent[];
    try {
      ents = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (!e.isDirectory()) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (re.test(r)) out.push(path.join(dir, e.name));
      if (d > 1) walk(path.join(dir, e.name), r, d - 1);
    }
  };
  walk(CGROUP_ROOT, '', depth);
  return out.sort();
}

/**
 * The cgroups of one pod that exist now, deepest first: `tspod/<uuid>` and below
 * in every hierarchy (v1 controllers, the hybrid layout's cgroup2 at unified,
 * pure v2's root).
 */
export function podCgroups(uuid: string): string[] {
  const tops = [path.join(CGROUP_ROOT, 'tspod', uuid)];
  try {
    for (const e of fs.readdirSync(CGROUP_ROOT, { withFileTypes: true })) if (e.isDirectory()) tops.push(path.join(CGROUP_ROOT, e.name, 'tspod', uuid));
  } catch {
    /* no cgroup file system */
  }
  const out: string[] = [];
  const walk = (dir: string): void => {
    let ents: fs.Dirent[];
    try {
      ents = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) if (e.isDirectory()) walk(path.join(dir, e.name));
    out.push(dir);
  };
  for (const t of tops) walk(t);
  return out;
}

/** Removes cgroup directories (deepest first), killing what is still in them. Returns messages for those that stay. */
export function removeCgroups(dirs: readonly string[]): string[] {
  const left: string[] = [];
  for (const c of [...dirs].sort((a, b) => b.length - a.length)) {
    const pids = cgroupPids(c);
    if (pids.length) killPids(pids);
    try {
      fs.rmdirSync(c);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.push(`${c}: ${(err as Error).message}`);
    }
  }
  return left;
}

/** The UUIDs of the pods in a tspod data directory (every state directory). */
export function podUuids(dataDir: string): string[] {
  const out = new Set<string>();
  for (const state of ['embryo', 'prepare', 'prepared', 'run', 'exited-garbage', 'garbage']) {
    try {
      for (const n of fs.readdirSync(path.join(dataDir, 'pods', state))) if (/^[0-9a-f-]{36}$/.test(n)) out.add(n);
    } catch {
      /* no such state directory */
    }
  }
  return [...out];
}

/** Pids in a cgroup (cgroup.procs), [] when it has none or is gone. */
export function cgroupPids(dir: string): number[] {
  try {
    return fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Entries of /tmp whose path starts with the given prefix. */
export function listTmpPrefixed(prefix: string): string[] {
  const dir = path.dirname(prefix);
  const base = path.basename(prefix);
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => n.startsWith(base))
      .map((n) => path.join(dir, n))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Removes a directory tree that tests made, but never across a mount point:
 * it unmounts what is below first and refuses if that fails (a recursive
 * delete through a bind mount would delete the host's files).
 */
export function removeTreeSafely(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const left = unmountAll([dir]);
  if (left.length > 0) {
    throw new Error(`not removing ${dir}: still mounted below it: ${left.map((m) => m.mountPoint).join(', ')}`);
  }
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Whether a cgroup (v2 or v1 directory) has member processes. */
export function cgroupHasProcs(dir: string): boolean {
  return cgroupPids(dir).length > 0;
}
