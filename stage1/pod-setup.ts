// What stage1 /init decides about a pod: each app's environment, credentials and
// mounts, turned into the helper's plan. Pure functions of the pod directory's
// contents and the run-time flags; init.ts does the writing and the exec.
import fs from 'node:fs';
import path from 'node:path';
import type { AppcApp, AppcImageManifest, NameValue } from './contract/appc.js';
import { DEFAULT_PATH, POD_FILES, POD_ROOT_PATHS, type AppSecurity, type PodApp, type PodManifest, type PodVolume, type RuntimeConfig, type UserNamespace } from './contract/pod.js';
import { NONE, PlanWriter } from './plan.js';
import { ImageFs } from '../native/image-fs.js';
import { capabilitiesFromIsolators, capabilityMask, DEFAULT_CAPABILITIES } from './contract/capabilities.js';
import { seccompFilter, type SeccompFilter } from './contract/seccomp.js';
import { appCgroupName, cgroupDirs, deviceCgroupKind, describeLayout, podOwnCgroupDirs, type CgroupLayout, type CgroupStep } from './contract/cgroups.js';
import { limitsFromIsolators, type Limits } from './contract/resources.js';
import { sysctlNamespaceProblem, sysctlsFromIsolators } from './contract/sysctl.js';
import { appDeviceRules, appDevices, formatDeviceRule, uncheckedDeviceProblem, type DeviceRule, type DeviceSpec } from './contract/devices.js';
import { hostsFallback, volumeCovers, type EtcBinds } from './contract/dns.js';


// appc's default capability bounding set (the 14 capabilities of spec/ace.md).
export { DEFAULT_CAPABILITIES, capabilityMask } from './contract/capabilities.js';

/**
 * The app's capability mask for the helper: its capability isolator (already
 * checked at prepare; --caps-retain/--caps-remove were stored as one), else
 * appc's default; undefined (the helper keeps its full set) with
 * --insecure-options=capabilities.
 */
export function appCapabilities(name: string, app: AppcApp, runtime: RuntimeConfig): string | undefined {
  if (runtime.disableCapabilities) return undefined;
  let caps: number[] | undefined;
  try {
    caps = capabilitiesFromIsolators(app.isolators);
  } catch (e) {
    throw new Error(`app ${name}: ${(e as Error).message}`);
  }
  return capabilityMask(caps ?? DEFAULT_CAPABILITIES);
}

const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/**
 * Kernel paths masked in every app (runc's list): a file gets /dev/null bound over
 * it, a directory a read-only empty tmpfs. Left out with --insecure-options=paths.
 */
export const MASKED_FILES = ['proc/kcore', 'proc/keys', 'proc/timer_list', 'proc/sched_debug', 'proc/sysrq-trigger', 'proc/latency_stats', 'proc/timer_stats'];
export const MASKED_DIRS = ['proc/acpi', 'proc/scsi'];
/** Masked only where the plan mounted sysfs itself (not under a /sys volume). */
export const MASKED_SYS_DIRS = ['sys/firmware'];
/** Kernel paths made read-only (bound onto themselves), as runc does. */
export const READONLY_PATHS = ['proc/sys', 'proc/irq', 'proc/bus', 'proc/fs'];

/**
 * The plan steps masking kernel paths below an app root (after its /proc and /sys
 * are mounted): every one `optional`, as this kernel may lack the path.
 */
function maskKernelPaths(p: PlanWriter, at: (rel: string) => string, sysfs: boolean): void {
  const flags = 'nosuid,nodev,noexec,optional';
  for (const f of MASKED_FILES) p.directive('mount', '/dev/null', at(f), NONE, `bind,${flags}`, NONE);
  for (const d of [...MASKED_DIRS, ...(sysfs ? MASKED_SYS_DIRS : [])]) p.directive('mount', 'tmpfs', at(d), 'tmpfs', `rdonly,${flags}`, 'mode=0555,size=4k');
  for (const d of READONLY_PATHS) p.directive('mount', at(d), at(d), NONE, `bind,rdonly,${flags}`, NONE);
}

export interface AppPlan {
  name: string;
  app: AppcApp;
  image: AppcImageManifest;
  layers: string[];
  env: NameValue[];
  security: AppSecurity;
  /** resource/memory, resource/cpu, os/linux/cpu-shares, tspod/pids-limit (checked at prepare). */
  limits: Limits;
  readOnlyRootFS: boolean;
  /** --device: host device nodes bound into the app's /dev (annotation tspod/devices). */
  devices: DeviceSpec[];
  /** The app's device cgroup allow list (the pod's /dev and the devices); [] when the host has no device cgroup. */
  deviceRules: DeviceRule[];
  /** readOnly: the volume's readOnly if it says, else the matching mount point's (rkt's rule). */
  mounts: Array<{ volume: PodVolume; target: string; readOnly: boolean }>;
}

export interface PodContext {
  podDir: string;
  uuid: string;
  manifest: PodManifest;
  runtime: RuntimeConfig;
  /** Apps prepared with --no-overlay have a copied rootfs (POD_FILES.appCopiedRootfs). */
  copiedRootfs: (app: string) => string | undefined;
  /** --private-users: the pod's id maps (its `userns` file). */
  userns?: UserNamespace;
  /** The host's cgroups (contract/cgroups.ts); none: no cgroup directives. */
  cgroups?: CgroupLayout;
  /** The helper's cgroup steps (contract/cgroups.ts podCgroupSteps), run first. */
  cgroupSteps?: CgroupStep[];
  /** The cgroups stage1 was started in (contract/cgroups.ts originCgroupDirs): the helper goes back there at exit to remove the pod's. */
  cgroupOrigin?: string[];
  /** A private network: the namespace file pid 1 joins (plan `netns`). */
  netns?: string;
  /** What the outer helper execs when the pod has exited (plan `exit-exec`): the network's release. */
  exitExec?: string[];
  /** What each app's /etc/resolv.conf and /etc/hosts are bound from (contract/dns.ts); none: the image's. */
  etc?: EtcBinds;
}

/** The pod's `userns` file (--private-users, written at prepare), or undefined. */
export function readUserNamespace(podDir: string): UserNamespace | undefined {
  const file = path.join(podDir, POD_FILES.userns);
  if (!fs.existsSync(file)) return undefined;
  const u = readJson<UserNamespace>(file);
  const ok = (m: unknown) => Array.isArray(m) && m.length === 1 && Array.isArray(m[0]) && m[0].length === 3 && m[0][0] === 0 && m[0].every((n: unknown) => Number.isInteger(n) && (n as number) >= 0);
  if (!ok(u.uidMap) || !ok(u.gidMap)) throw new Error(`${file}: malformed`);
  return u;
}

/** An app's limits from its isolators (already checked at prepare). */
export function appLimits(name: string, app: AppcApp): Limits {
  try {
    return limitsFromIsolators(app.isolators);
  } catch (e) {
    throw new Error(`app ${name}: ${(e as Error).message}`);
  }
}

export function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** The environment an app runs with: the pod manifest's merged one, then defaults. */
export function appEnvironment(name: string, app: AppcApp): NameValue[] {
  const env = new Map<string, string>();
  for (const e of app.environment ?? []) env.set(e.name, e.value);
  const defaults: Record<string, string> = { PATH: DEFAULT_PATH, HOME: '/root', USER: 'root', LOGNAME: 'root', SHELL: '/bin/sh' };
  for (const [k, v] of Object.entries(defaults)) if (!env.has(k)) env.set(k, v);
  env.set('AC_APP_NAME', name);
  env.set('container', 'tspod');
  return [...env].map(([n, value]) => ({ name: n, value }));
}

/** rkt's user/group strings → the helper's: numbers, name:NAME, path:PATH. */
export function credential(s: string): string {
  if (/^\d+$/.test(s)) return s;
  if (s.startsWith('/')) return `path:${s}`;
  return `name:${s}`;
}

/**
 * An app's --device list and its device cgroup rules; where the host has no
 * device cgroup, no rules and only rw or rwm devices (uncheckedDeviceProblem).
 */
export function appDeviceAccess(name: string, annotations: readonly NameValue[] | undefined, cgroups: CgroupLayout | undefined): { devices: DeviceSpec[]; rules: DeviceRule[] } {
  try {
    const devices = appDevices(annotations);
    if (cgroups && deviceCgroupKind(cgroups)) return { devices, rules: appDeviceRules(devices) };
    const why = uncheckedDeviceProblem(devices, cgroups ? describeLayout(cgroups) : 'no cgroups');
    if (why) throw new Error(why);
    return { devices, rules: [] };
  } catch (e) {
    throw new Error(`app ${name}: ${(e as Error).message}`);
  }
}

export function appPlans(ctx: PodContext): AppPlan[] {
  const volumes = new Map((ctx.manifest.volumes ?? []).map((v) => [v.name, v]));
  return ctx.manifest.apps.map((pa: PodApp) => {
    const image = readJson<AppcImageManifest>(path.join(ctx.podDir, POD_FILES.appManifest(pa.name)));
    const layers = readJson<string[]>(path.join(ctx.podDir, POD_FILES.appLayers(pa.name)));
    const app = pa.app ?? image.app ?? { user: '0', group: '0' };
    const mounts = (pa.mounts ?? []).map((m) => {
      const volume = volumes.get(m.volume);
      if (!volume) throw new Error(`app ${pa.name}: volume ${m.volume} is not in the pod manifest`);
      const target = path.posix.normalize(m.path);
      const point = app.mountPoints?.find((mp) => path.posix.normalize(mp.path) === target) ?? app.mountPoints?.find((mp) => mp.name === m.volume);
      return { volume, target: m.path, readOnly: volume.readOnly ?? point?.readOnly ?? false };
    });
    const dev = appDeviceAccess(pa.name, pa.annotations, ctx.cgroups);
    return {
      name: pa.name,
      app,
      image,
      layers,
      env: appEnvironment(pa.name, app),
      readOnlyRootFS: Boolean(pa.readOnlyRootFS),
      limits: appLimits(pa.name, app),
      mounts,
      devices: dev.devices,
      deviceRules: dev.rules,
      security: {
        user: credential(app.user || '0'),
        group: credential(app.group || '0'),
        supplementaryGids: app.supplementaryGIDs ?? [],
        capabilities: appCapabilities(pa.name, app, ctx.runtime),
        noNewPrivileges: app.isolators?.some((i) => i.name === 'os/linux/no-new-privileges' && i.value === true) ?? false,
        cwd: app.workingDirectory || '/',
        oomScoreAdj: parseOomIsolator(app),
        seccomp: appSeccomp(pa.name, app, ctx.runtime),
        ...(dev.rules.length ? { devices: dev.rules.map(formatDeviceRule) } : {}),
      },
    };
  });
}

/** The app's seccomp filter (its isolator was checked at prepare), or none with --insecure-options=seccomp. */
export function appSeccomp(name: string, app: AppcApp, runtime: RuntimeConfig): SeccompFilter | undefined {
  try {
    return seccompFilter(app.isolators, Boolean(runtime.disableSeccomp));
  } catch (e) {
    throw new Error(`app ${name}: ${(e as Error).message}`);
  }
}

/** os/linux/oom-score-adj (checked at prepare): -1000..1000, or undefined. */
function parseOomIsolator(app: AppcApp): number | undefined {
  const v = app.isolators?.find((i) => i.name === 'os/linux/oom-score-adj')?.value;
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1000 || n > 1000) throw new Error(`bad os/linux/oom-score-adj ${JSON.stringify(v)}`);
  return n;
}

/**
 * Does the image (its layer directories, lowest first) have an entry at `rel`
 * (relative to its root)? Resolved by overlay rules with native/image-fs.ts:
 * symlinks on the way are followed inside the image only, never on the host; the
 * entry itself is not followed, so an /etc/hosts that is a symlink (anywhere, even
 * out to /proc) counts as there and is never written through.
 */
export function imageHas(layers: string[], rel: string): boolean {
  return new ImageFs(layers).has(`/${rel}`);
}

/** The namespaces of the pod's own: ipc unless --ipc=parent, net unless --net=host. */
export function podNamespaces(runtime: RuntimeConfig): string[] {
  return ['mnt', 'pid', 'uts', ...(runtime.ipc === 'parent' ? [] : ['ipc']), ...(runtime.net === 'host' ? [] : ['net'])];
}

/**
 * The pod's sysctls (os/unix/sysctl of the pod manifest and of every app: they
 * share the namespaces), each in a namespace of the pod's own (checked at prepare;
 * again here, as run-prepared may change --net or --ipc).
 */
export function podSysctls(ctx: PodContext, apps: AppPlan[]): Map<string, string> {
  let out = sysctlsFromIsolators(ctx.manifest.isolators);
  for (const a of apps) out = sysctlsFromIsolators(a.app.isolators, out);
  const problem = sysctlNamespaceProblem(out, { net: ctx.runtime.net, ipc: ctx.runtime.ipc ?? 'private' });
  if (problem) throw new Error(problem);
  return out;
}

/**
 * `dir`/`rel` for a plain relative path (no empty, `.` or `..` component): a
 * concatenation, as path.join's normalisation costs stage1 whole milliseconds
 * (cold code, ~200 calls per app); anything else goes through path.join.
 */
export function below(dir: string, rel: string): string {
  return rel.split('/').every((c) => c !== '' && c !== '.' && c !== '..') ? `${dir}/${rel}` : path.join(dir, rel);
}

/** Builds the plan for the whole pod. */
export function buildPlan(ctx: PodContext, apps: AppPlan[], stdinInherit: boolean): string {
  const pod = ctx.podDir;
  const root = path.join(pod, POD_FILES.stage1Rootfs);
  const p = new PlanWriter();
  p.directive('version', 1);
  p.directive('uuid', ctx.uuid);
  p.directive('hostname', ctx.runtime.hostname);
  const cg = ctx.cgroups && ctx.cgroups.version !== 0 ? ctx.cgroups : undefined;
  p.directive('namespaces', [...podNamespaces(ctx.runtime), ...(cg ? ['cgroup'] : [])].join(','));
  if (ctx.netns) p.directive('netns', ctx.netns);
  if (ctx.exitExec) p.directive('exit-exec', ...ctx.exitExec);
  for (const [name, value] of podSysctls(ctx, apps)) p.directive('sysctl', name, value);
  p.directive('status-dir', path.join(pod, POD_FILES.statusDir));
  p.directive('pid-file', path.join(pod, POD_FILES.pid));
  p.directive('apps-pid-dir', path.join(pod, POD_FILES.appsPidDir));
  // At exit the helper leaves the pod's cgroups and removes them: an exited pod has none.
  if (cg) {
    for (const [kw, ...fields] of ctx.cgroupSteps ?? []) p.directive(kw, ...fields);
    for (const d of ctx.cgroupOrigin ?? []) p.directive('cgroup-leave', d);
    for (const d of podOwnCgroupDirs(cg, ctx.uuid)) p.directive('cgroup-remove', d);
  }
  p.directive('root', root);
  p.directive('stdin', stdinInherit ? 'inherit' : 'null');
  // --private-users: pid 1 joins the pod's user namespace once the set-up is done;
  // what the set-up creates (mount points, /etc/hosts, /dev entries) is the pod root's.
  const un = ctx.userns;
  const owner = un ? `,uid=${un.uidMap[0][1]},gid=${un.gidMap[0][1]}` : '';
  if (un) {
    p.directive('userns', un.uidMap[0][1], un.gidMap[0][1], un.uidMap[0][2]);
    p.directive('create-owner', un.uidMap[0][1], un.gidMap[0][1]);
  }

  p.directive('mkdir', root, '0755');
  p.directive('mount', 'tmpfs', root, 'tmpfs', 'nosuid,nodev', 'mode=0755');
  for (const a of apps) {
    const appRoot = path.join(root, POD_ROOT_PATHS.appRoot(a.name));
    p.comment(`app ${a.name}`);
    p.directive('mkdir', appRoot, '0755');
    const copied = ctx.copiedRootfs(a.name);
    if (copied) {
      p.directive('mount', copied, appRoot, NONE, 'bind,nodev', NONE);
    } else {
      let layers = a.layers;
      if (un) {
        // Each layer idmapped through the pod's user namespace (the image's root is
        // the pod's root), in the pod root's tmpfs, as the overlay's lower layers.
        layers = a.layers.map((l, i) => {
          const at = path.join(root, POD_ROOT_PATHS.appLayer(a.name, i));
          p.directive('mkdir', at, '0755');
          p.directive('mount', l, at, NONE, 'bind,idmap', NONE);
          return at;
        });
      }
      const lower = [...layers].reverse().join(':');
      p.directive('mount', 'overlay', appRoot, 'overlay', 'nodev', `lowerdir=${lower},upperdir=${path.join(pod, POD_FILES.overlayUpper(a.name))},workdir=${path.join(pod, POD_FILES.overlayWork(a.name))}`);
    }
    const at = (rel: string) => below(appRoot, rel);
    // Volumes first: the kernel file systems below must stay on top of them.
    for (const m of a.mounts) {
      const source = m.volume.kind === 'host' ? m.volume.source! : path.join(pod, POD_FILES.sharedVolume(m.volume.name));
      const target = at(m.target);
      let isDir = true;
      try {
        isDir = fs.statSync(source).isDirectory();
      } catch {
        /* the helper reports a missing source */
      }
      if (isDir) p.directive('mkdir', target, '0755');
      else p.directive('touch', target, '0644');
      const recursive = m.volume.kind === 'host' ? m.volume.recursive !== false : false;
      p.directive('mount', source, target, NONE, recursive ? 'bind,rec,nodev' : 'bind,nodev', NONE);
      if (m.readOnly) p.directive('mount', NONE, target, NONE, `remount,bind,rdonly${recursive ? ',rec' : ''}`, NONE);
    }
    p.directive('mkdir', at('proc'), '0555');
    p.directive('mount', 'proc', at('proc'), 'proc', 'nosuid,nodev,noexec', NONE);
    const sysfs = !a.mounts.some((m) => m.target === '/sys' || m.target.startsWith('/sys/'));
    if (sysfs) {
      p.directive('mkdir', at('sys'), '0555');
      p.directive('mount', 'sysfs', at('sys'), 'sysfs', 'rdonly,nosuid,nodev,noexec', NONE);
    }
    p.directive('mkdir', at('dev'), '0755');
    p.directive('mount', 'tmpfs', at('dev'), 'tmpfs', 'nosuid,nodev,strictatime', `mode=0755,size=65536k${owner}`);
    for (const d of DEVICES) {
      p.directive('touch', at(`dev/${d}`), '0666');
      p.directive('mount', `/dev/${d}`, at(`dev/${d}`), NONE, 'bind', NONE);
    }
    p.directive('touch', at('dev/console'), '0600');
    // The pod's own terminal (a pty the helper relays to the caller's) with --interactive
    // on a terminal, else /dev/null: the caller's terminal never reaches the pod.
    p.directive('console', at('dev/console'));
    p.directive('mkdir', at('dev/pts'), '0755');
    p.directive('mount', 'devpts', at('dev/pts'), 'devpts', 'nosuid,noexec', 'newinstance,ptmxmode=0666,mode=0620');
    p.directive('symlink', 'pts/ptmx', at('dev/ptmx'));
    p.directive('mkdir', at('dev/shm'), '1777');
    p.directive('mount', 'shm', at('dev/shm'), 'tmpfs', 'nosuid,nodev,noexec', `mode=1777,size=65536k${owner}`);
    p.directive('symlink', '/proc/self/fd', at('dev/fd'));
    p.directive('symlink', '/proc/self/fd/0', at('dev/stdin'));
    p.directive('symlink', '/proc/self/fd/1', at('dev/stdout'));
    p.directive('symlink', '/proc/self/fd/2', at('dev/stderr'));
    // --device: the host's node bound on its own (the /dev tmpfs is nodev, the bind is
    // not); read-only without `w` (the device cgroup is what limits the access).
    for (const d of a.devices) {
      p.directive('touch', at(d.podPath.slice(1)), '0600');
      p.directive('mount', d.hostPath, at(d.podPath.slice(1)), NONE, d.permissions.includes('w') ? 'bind' : 'bind,rdonly', NONE);
    }
    // /etc plumbing (docs/architecture.md, "Inside a pod"): hostname, hosts fallback, mtab.
    // A copied rootfs (--no-overlay) is one layer of its own: the same rules.
    const hasEtc = imageHas(copied ? [copied] : a.layers, 'etc');
    const has = (rel: string) => imageHas(copied ? [copied] : a.layers, rel);
    p.directive('mkdir', at('etc'), '0755');
    p.directive('touch', at('etc/hostname'), '0644');
    p.directive('mount', at('proc/sys/kernel/hostname'), at('etc/hostname'), NONE, 'bind', NONE);
    // The pod's resolv.conf and hosts (--dns*, --hosts-entry, a network's DNS): a file of
    // the app's own replaces the image's (a symlink there too, never written through),
    // and the pod's is bound on it read-only. Never into a volume (prepare refuses the
    // flags with one there; a network's DNS leaves it alone).
    const covered = (file: string) => a.mounts.some((m) => volumeCovers(m.target, file));
    for (const [file, source] of [['/etc/resolv.conf', ctx.etc?.resolvConf], ['/etc/hosts', ctx.etc?.hosts]] as const) {
      if (!source || covered(file)) continue;
      p.directive('write', at(file.slice(1)), '0644', '');
      p.directive('mount', source, at(file.slice(1)), NONE, 'bind,rdonly,nosuid,nodev,noexec', NONE);
    }
    if (!ctx.etc?.hosts && !has('etc/hosts') && !covered('/etc/hosts')) {
      p.directive('write', at('etc/hosts'), '0644', hostsFallback(ctx.runtime.hostname));
    }
    if (hasEtc && !has('etc/mtab')) p.directive('symlink', '../proc/self/mounts', at('etc/mtab'));
    // After /etc/hostname's bind of /proc/sys/kernel/hostname, which keeps its mode.
    if (!ctx.runtime.disablePaths) maskKernelPaths(p, at, sysfs);
    if (a.readOnlyRootFS) p.directive('mount', NONE, appRoot, NONE, 'remount,bind,rdonly', NONE);
  }

  for (const a of apps) {
    p.directive('app', a.name);
    p.directive('app-root', `/${POD_ROOT_PATHS.appRoot(a.name)}`);
    p.directive('app-exec', ...(a.app.exec ?? []));
    for (const e of a.env) p.directive('app-env', `${e.name}=${e.value}`);
    p.directive('app-cwd', a.security.cwd);
    p.directive('app-user', a.security.user);
    p.directive('app-group', a.security.group);
    p.directive('app-supplementary-gids', a.security.supplementaryGids.length ? a.security.supplementaryGids.join(',') : NONE);
    for (const h of a.app.eventHandlers ?? []) {
      if (h.name === 'pre-start') p.directive('app-pre-start', ...h.exec);
    }
    for (const h of a.app.eventHandlers ?? []) {
      if (h.name === 'post-stop') p.directive('app-post-stop', ...h.exec);
    }
    p.directive('app-readonly-root', a.readOnlyRootFS ? 1 : 0);
    p.directive('app-no-new-privileges', a.security.noNewPrivileges ? 1 : 0);
    p.directive('app-capabilities', a.security.capabilities ?? NONE);
    if (a.security.oomScoreAdj !== undefined) p.directive('app-oom-score-adj', a.security.oomScoreAdj);
    const sc = a.security.seccomp;
    if (sc) p.directive('app-seccomp', sc.mode, sc.errnoNumber, sc.syscalls.length ? sc.syscalls.join(',') : NONE);
    if (cg) for (const d of cgroupDirs(cg, ctx.uuid, appCgroupName(a.name))) p.directive('app-cgroup', d);
    // cgroup v2: the device rules as a BPF program on the app's cgroup (v1: written by init).
    if (cg?.version === 2 && a.deviceRules.length) {
      p.directive('app-device-filter', cgroupDirs(cg, ctx.uuid, appCgroupName(a.name))[0], a.deviceRules.map((r) => `${r.type}:${r.major}:${r.minor}:${r.access}`).join(','));
    }
    p.directive('end-app');
  }
  return p.text();
}
