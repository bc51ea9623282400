// The pod's cgroups: where they are, how they are made, limited, read, frozen
// and removed. Shared by stage1 (/init makes them, /gc removes them) and stage0
// (stats, pause, resume, the oom marker of status).
//
// stage1 does not touch the cgroup file system: it writes what to make, write and
// join as steps of the helper's plan (podCgroupSteps), which the outer helper
// runs before anything else, and what to remove at exit (podOwnCgroupDirs).
// Layout (one cgroup per pod, one per app, and one for the pod's supervisor):
//   cgroup v1 (and the "hybrid" layout: v1 controllers at /sys/fs/cgroup/<ctrl>,
//   a cgroup2 beside them at /sys/fs/cgroup/unified that tspod leaves alone), in
//   each of the memory, cpu, cpuacct, pids, freezer and devices hierarchies:
//     <mount>/tspod/<uuid>/init          the outer helper and the pod's pid 1
//     <mount>/tspod/<uuid>/app-<name>    each app (its main process and children)
//   pure cgroup v2 (/sys/fs/cgroup is cgroup2): the same tree once, with the
//   controllers cgroup.controllers lists (of memory, cpu, pids) enabled down to
//   the apps through cgroup.subtree_control. The pod cgroup holds no process
//   (v2's no-internal-process rule): pid 1 lives in init.
// `app-` keeps an app's name from meeting the cgroup's own files (`tasks`,
// `memory.max`); `init` cannot be an app's.
// Devices: each app's cgroup allows only its device rules (contract/devices.ts).
// v1: "a" written to its devices.deny, then each rule to devices.allow (helper
// steps), before any process joins it (the pod and init cgroups keep the parent's: the helper
// opens the host's /dev/ptmx there). v2 has no devices controller: the helper
// attaches a BPF_PROG_TYPE_CGROUP_DEVICE program to the app's cgroup (plan
// directive app-device-filter) before any app child joins it.
import fs from 'node:fs';
import path from 'node:path';
import { CPU_PERIOD_US, DEFAULT_PIDS_LIMIT, type Limits } from './resources.js';
import { formatDeviceRule, type DeviceRule } from './devices.js';

const CGROUP_SUPER_MAGIC = 0x27e0eb;
const CGROUP2_SUPER_MAGIC = 0x63677270;

export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids', 'freezer', 'devices'] as const;
export const V2_CONTROLLERS = ['memory', 'cpu', 'pids'] as const;
export const CGROUP_PARENT = 'tspod';
export const INIT_CGROUP = 'init';

export type CgroupLayout =
  | { version: 1; /** controller → hierarchy mount (comounted ones share it) */ mounts: Record<string, string> }
  | { version: 2; root: string; controllers: string[] }
  | { version: 0 };

function fsType(p: string): number | undefined {
  try {
    return Number(fs.statfsSync(p).type);
  } catch {
    return undefined;
  }
}

/**
 * The host's cgroup layout: pure v2 when /sys/fs/cgroup is cgroup2; v1 (hybrid
 * included) when any of tspod's controllers is a v1 hierarchy there; else the
 * cgroup2 at /sys/fs/cgroup/unified if there is one; else none.
 */
export function detectCgroups(base = '/sys/fs/cgroup'): CgroupLayout {
  if (fsType(base) === CGROUP2_SUPER_MAGIC) return { version: 2, root: base, controllers: v2Controllers(base) };
  const mounts: Record<string, string> = {};
  for (const c of V1_CONTROLLERS) {
    const p = path.join(base, c);
    if (fsType(p) !== CGROUP_SUPER_MAGIC) continue;
    try {
      mounts[c] = fs.realpathSync(p); // cpu -> cpu,cpuacct where they are comounted
    } catch {
      /* gone */
    }
  }
  if (Object.keys(mounts).length) return { version: 1, mounts };
  const unified = path.join(base, 'unified');
  if (fsType(unified) === CGROUP2_SUPER_MAGIC) return { version: 2, root: unified, controllers: v2Controllers(unified) };
  return { version: 0 };
}

function v2Controllers(root: string): string[] {
  try {
    return fs.readFileSync(path.join(root, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

export function describeLayout(l: CgroupLayout): string {
  if (l.version === 1) return `cgroup v1 (${Object.entries(l.mounts).map(([c, m]) => `${c} at ${m}`).join(', ')})`;
  if (l.version === 2) return `cgroup v2 at ${l.root} (controllers: ${l.controllers.join(' ') || 'none'})`;
  return 'no cgroup file system';
}

/** The hierarchies' mount points (each once). */
function roots(l: CgroupLayout): string[] {
  if (l.version === 1) return [...new Set(Object.values(l.mounts))];
  if (l.version === 2) return [l.root];
  return [];
}

export function appCgroupName(app: string): string {
  return `app-${app}`;
}

/** The pod's cgroup (sub: init or app-<name> below it) in every hierarchy. */
export function cgroupDirs(l: CgroupLayout, uuid: string, sub?: string): string[] {
  return roots(l).map((r) => path.join(r, CGROUP_PARENT, uuid, sub ?? ''));
}

/** The cgroup directory holding a controller's files, or undefined when that controller is not there. */
export function controllerDir(l: CgroupLayout, ctrl: string, uuid: string, sub?: string): string | undefined {
  if (l.version === 1) return l.mounts[ctrl] ? path.join(l.mounts[ctrl], CGROUP_PARENT, uuid, sub ?? '') : undefined;
  if (l.version === 2) return path.join(l.root, CGROUP_PARENT, uuid, sub ?? '');
  return undefined;
}

/** The helper's cgroup steps (plan cgroup-make, cgroup-write [optional], cgroup-join), in order. */
export type CgroupStep = ['cgroup-make', string] | ['cgroup-write', string, string] | ['cgroup-write', string, string, 'optional'] | ['cgroup-join', string];

function write(steps: CgroupStep[], dir: string, file: string, value: string | number, optional = false): void {
  steps.push(optional ? ['cgroup-write', path.join(dir, file), String(value), 'optional'] : ['cgroup-write', path.join(dir, file), String(value)]);
}

/** A control file written where the host has it: the hierarchy's root cgroup says (v1 roots have memsw files iff swap is accounted; v2 roots have no memory.swap.max, so it is written where the kernel has it). */
function rootHas(l: CgroupLayout, ctrl: string, file: string): boolean {
  if (l.version === 1) return l.mounts[ctrl] !== undefined && fs.existsSync(path.join(l.mounts[ctrl], file));
  return true;
}

/** v1 cpu.shares (2..262144) → v2 cpu.weight (1..10000), as runc and systemd map it. */
export function sharesToWeight(shares: number): number {
  return Math.max(1, Math.min(10000, 1 + Math.floor(((shares - 2) * 9999) / 262142)));
}

/**
 * Writes limits into one cgroup (a pod's or an app's). An explicit limit whose
 * controller is missing is an error; the default pids limit is then skipped.
 */
function applyLimits(steps: CgroupStep[], l: CgroupLayout, uuid: string, sub: string | undefined, limits: Limits, withDefaults: boolean): void {
  const need = (ctrl: string, what: string): string => {
    const dir = controllerDir(l, ctrl, uuid, sub);
    const ok = dir && (l.version === 1 || (l.version === 2 && l.controllers.includes(ctrl)));
    if (!ok) throw new Error(`${what} needs the ${ctrl} controller, which ${describeLayout(l)} does not have`);
    return dir;
  };
  if (limits.memory !== undefined) {
    const dir = need('memory', 'a memory limit');
    if (l.version === 1) {
      write(steps, dir, 'memory.limit_in_bytes', limits.memory);
      // no swapping past the limit where swap is accounted
      if (rootHas(l, 'memory', 'memory.memsw.limit_in_bytes')) write(steps, dir, 'memory.memsw.limit_in_bytes', limits.memory);
    } else {
      write(steps, dir, 'memory.max', limits.memory);
      // (where the kernel accounts swap: the file is missing otherwise)
      write(steps, dir, 'memory.swap.max', 0, true);
    }
  }
  if (limits.cpuMillis !== undefined) {
    const dir = need('cpu', 'a CPU limit');
    const quota = Math.round((limits.cpuMillis * CPU_PERIOD_US) / 1000);
    if (l.version === 1) {
      write(steps, dir, 'cpu.cfs_period_us', CPU_PERIOD_US);
      write(steps, dir, 'cpu.cfs_quota_us', quota);
    } else write(steps, dir, 'cpu.max', `${quota} ${CPU_PERIOD_US}`);
  }
  if (limits.cpuShares !== undefined) {
    const dir = need('cpu', 'cpu-shares');
    if (l.version === 1) write(steps, dir, 'cpu.shares', limits.cpuShares);
    else write(steps, dir, 'cpu.weight', sharesToWeight(limits.cpuShares));
  }
  const pids = limits.pids ?? (withDefaults ? DEFAULT_PIDS_LIMIT : undefined);
  if (pids !== undefined) {
    const dir = controllerDir(l, 'pids', uuid, sub);
    const has = dir && (l.version === 1 || (l.version === 2 && l.controllers.includes('pids')));
    if (has) write(steps, dir, 'pids.max', pids);
    else if (limits.pids !== undefined) need('pids', 'a pids limit');
  }
}

/** v2: enables the controllers tspod uses (those the root offers) for a cgroup's children; a failure is left to the limit that needs it. */
function enableControllers(steps: CgroupStep[], l: CgroupLayout, dir: string): void {
  if (l.version !== 2) return;
  for (const c of V2_CONTROLLERS) if (l.controllers.includes(c)) write(steps, dir, 'cgroup.subtree_control', `+${c}`, true);
}

export interface CgroupApp {
  name: string;
  limits: Limits;
  /** The device cgroup's allow list (contract/devices.ts appDeviceRules). */
  devices: DeviceRule[];
}

/**
 * How this layout limits an app's devices: v1's devices controller, a cgroup v2
 * BPF program (the helper's), or not at all (no cgroups, or v1 without devices).
 */
export function deviceCgroupKind(l: CgroupLayout): 'v1' | 'bpf' | undefined {
  if (l.version === 1) return l.mounts.devices ? 'v1' : undefined;
  return l.version === 2 ? 'bpf' : undefined;
}

/** v1: an app cgroup denies every device, then allows its rules (it has no child yet). */
function applyDeviceRules(steps: CgroupStep[], l: CgroupLayout, uuid: string, sub: string, rules: DeviceRule[]): void {
  if (deviceCgroupKind(l) !== 'v1') return;
  const dir = controllerDir(l, 'devices', uuid, sub)!;
  write(steps, dir, 'devices.deny', 'a');
  for (const r of rules) write(steps, dir, 'devices.allow', formatDeviceRule(r));
}

/**
 * The helper's steps (plan cgroup-make, cgroup-write, cgroup-join) that make the
 * pod's cgroups (tspod/<uuid>, its init and one per app) in every hierarchy,
 * write the limits (the pod's on the pod cgroup, each app's with the default
 * pids limit, and v1 device rules, on its own) and move the helper into the
 * pod's init cgroup: pid 1 stays there, each app child moves on into its own
 * before it runs anything of the app. Throws an Error for a limit this layout
 * cannot apply (nothing is made then).
 */
export function podCgroupSteps(l: CgroupLayout, uuid: string, apps: CgroupApp[], podLimits: Limits): CgroupStep[] {
  const steps: CgroupStep[] = [];
  for (const r of roots(l)) {
    enableControllers(steps, l, r);
    const pod = path.join(r, CGROUP_PARENT, uuid);
    steps.push(['cgroup-make', pod]); // (and tspod/, the parent)
    enableControllers(steps, l, path.join(r, CGROUP_PARENT));
    enableControllers(steps, l, pod);
    steps.push(['cgroup-make', path.join(pod, INIT_CGROUP)]);
    for (const a of apps) steps.push(['cgroup-make', path.join(pod, appCgroupName(a.name))]);
  }
  applyLimits(steps, l, uuid, undefined, podLimits, false);
  for (const a of apps) {
    applyLimits(steps, l, uuid, appCgroupName(a.name), a.limits, true);
    applyDeviceRules(steps, l, uuid, appCgroupName(a.name), a.devices);
  }
  for (const d of cgroupDirs(l, uuid, INIT_CGROUP)) steps.push(['cgroup-join', d]);
  return steps;
}

/**
 * The cgroups this process is in (/proc/self/cgroup, or `text`), one per
 * hierarchy of the layout, in cgroupDirs' order: where the helper goes back to
 * at the pod's exit (plan `cgroup-leave`) so that it can remove the pod's. A
 * hierarchy it cannot place gets its root.
 */
export function originCgroupDirs(l: CgroupLayout, text?: string): string[] {
  let lines: string[] = [];
  try {
    lines = (text ?? fs.readFileSync('/proc/self/cgroup', 'utf8')).split('\n');
  } catch {
    /* no /proc: the roots */
  }
  // "ID:CONTROLLERS:PATH"; v2's line is "0::PATH"
  const entries = lines.map((ln) => /^\d+:([^:]*):(\/.*)$/.exec(ln)).filter((m): m is RegExpExecArray => m !== null);
  const inside = (root: string, rel: string | undefined) => (rel && rel !== '/' && !rel.split('/').includes('..') ? path.join(root, rel) : root);
  if (l.version === 2) return [inside(l.root, entries.find((m) => m[1] === '')?.[2])];
  if (l.version !== 1) return [];
  return roots(l).map((root) => {
    const ctrls = Object.keys(l.mounts).filter((c) => l.mounts[c] === root);
    return inside(root, entries.find((m) => m[1].split(',').some((c) => ctrls.includes(c)))?.[2]);
  });
}

/** The pod's own cgroups (its init's, then its), deepest first, in every hierarchy: what the helper removes at exit (plan `cgroup-remove`). */
export function podOwnCgroupDirs(l: CgroupLayout, uuid: string): string[] {
  return [...cgroupDirs(l, uuid, INIT_CGROUP), ...cgroupDirs(l, uuid)];
}

/**
 * Removes the pod's cgroups, deepest first (with any an app made below its own),
 * in every hierarchy. Returns what could not be removed (a cgroup that still has
 * processes), as messages.
 */
export function removePodCgroups(l: CgroupLayout, uuid: string): string[] {
  const left: string[] = [];
  const remove = (d: string, depth: number): void => {
    let subs: fs.Dirent[] = [];
    try {
      if (depth < 64) subs = fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    }
    for (const s of subs) remove(path.join(d, s.name), depth + 1);
    try {
      fs.rmdirSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') left.push(`${d}: ${code}`);
    }
  };
  for (const pod of cgroupDirs(l, uuid)) remove(pod, 0);
  return left;
}

function readText(dir: string | undefined, file: string): string | undefined {
  if (!dir) return undefined;
  try {
    return fs.readFileSync(path.join(dir, file), 'utf8');
  } catch {
    return undefined;
  }
}

function readNumber(dir: string | undefined, file: string): number | undefined {
  const t = readText(dir, file)?.trim();
  if (t === undefined || t === '' || t === 'max') return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** The value of `key N` in a flat-keyed file (memory.events, cpu.stat, memory.oom_control). */
export function keyed(text: string | undefined, key: string): number | undefined {
  const m = text ? new RegExp(`^${key} (\\d+)$`, 'm').exec(text) : null;
  return m ? Number(m[1]) : undefined;
}

/** How many times the OOM killer killed in an app's cgroup (v1 memory.oom_control, v2 memory.events). */
export function oomKills(l: CgroupLayout, uuid: string, app: string): number | undefined {
  const dir = controllerDir(l, 'memory', uuid, appCgroupName(app));
  return keyed(readText(dir, l.version === 1 ? 'memory.oom_control' : 'memory.events'), 'oom_kill');
}

export interface AppCgroupStats {
  /** CPU time used, ns. */
  cpuNs?: number;
  memoryBytes?: number;
  memoryPeakBytes?: number;
  memoryLimitBytes?: number;
  pids?: number;
  pidsLimit?: number;
  oomKills?: number;
}

/** One app's figures; undefined when its cgroup is gone. */
export function appStats(l: CgroupLayout, uuid: string, app: string): AppCgroupStats | undefined {
  const sub = appCgroupName(app);
  const any = cgroupDirs(l, uuid, sub)[0];
  if (!any || !fs.existsSync(any)) return undefined;
  const s: AppCgroupStats = {};
  const mem = controllerDir(l, 'memory', uuid, sub);
  const pids = controllerDir(l, 'pids', uuid, sub);
  if (l.version === 1) {
    s.cpuNs = readNumber(controllerDir(l, 'cpuacct', uuid, sub), 'cpuacct.usage');
    s.memoryBytes = readNumber(mem, 'memory.usage_in_bytes');
    s.memoryPeakBytes = readNumber(mem, 'memory.max_usage_in_bytes');
    const lim = readNumber(mem, 'memory.limit_in_bytes');
    s.memoryLimitBytes = lim !== undefined && lim < 2 ** 62 ? lim : undefined;
  } else {
    const usec = keyed(readText(any, 'cpu.stat'), 'usage_usec');
    s.cpuNs = usec !== undefined ? usec * 1000 : undefined;
    s.memoryBytes = readNumber(mem, 'memory.current');
    s.memoryPeakBytes = readNumber(mem, 'memory.peak');
    s.memoryLimitBytes = readNumber(mem, 'memory.max');
  }
  s.pids = readNumber(pids, 'pids.current');
  if (s.pids === undefined) {
    const tasks = readText(any, l.version === 1 ? 'tasks' : 'cgroup.threads');
    s.pids = tasks === undefined ? undefined : tasks.split('\n').filter(Boolean).length;
  }
  s.pidsLimit = readNumber(pids, 'pids.max');
  s.oomKills = oomKills(l, uuid, app);
  return s;
}

function writeNow(dir: string, file: string, value: string | number): void {
  try {
    fs.writeFileSync(path.join(dir, file), String(value));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`writing ${value} to ${path.join(dir, file)}: ${err.code ?? err.message}`);
  }
}

/** Freezes (or thaws) an app's cgroup: v1 freezer.state, v2 cgroup.freeze. */
export function setFrozen(l: CgroupLayout, uuid: string, app: string, frozen: boolean): void {
  const sub = appCgroupName(app);
  if (l.version === 1) {
    const dir = controllerDir(l, 'freezer', uuid, sub);
    if (!dir) throw new Error(`pausing needs the freezer controller, which ${describeLayout(l)} does not have`);
    writeNow(dir, 'freezer.state', frozen ? 'FROZEN' : 'THAWED');
  } else if (l.version === 2) {
    writeNow(cgroupDirs(l, uuid, sub)[0], 'cgroup.freeze', frozen ? 1 : 0);
  } else throw new Error('pausing needs cgroups, and this host has no cgroup file system');
}

/** 'frozen', 'freezing' (v1 on its way), 'thawed', or undefined when the cgroup is not there. */
export function frozenState(l: CgroupLayout, uuid: string, app: string): 'frozen' | 'freezing' | 'thawed' | undefined {
  const sub = appCgroupName(app);
  if (l.version === 1) {
    const t = readText(controllerDir(l, 'freezer', uuid, sub), 'freezer.state')?.trim();
    return t === 'FROZEN' ? 'frozen' : t === 'FREEZING' ? 'freezing' : t === 'THAWED' ? 'thawed' : undefined;
  }
  if (l.version === 2) {
    const dir = cgroupDirs(l, uuid, sub)[0];
    const want = readNumber(dir, 'cgroup.freeze');
    if (want === undefined) return undefined;
    const got = keyed(readText(dir, 'cgroup.events'), 'frozen');
    return want ? (got ? 'frozen' : 'freezing') : 'thawed';
  }
  return undefined;
}
