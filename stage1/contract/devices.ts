// Per-app host devices (`--device=HOSTPATH[:PODPATH[:rwm]]`, podman's syntax):
// stored in the pod manifest as the app's annotation tspod/devices, a JSON list of
// {hostPath, podPath, permissions}. stage1 binds each host device node onto
// PODPATH (below the app's /dev) in that app's rootfs (read-only without `w`), and
// the app's device cgroup allows exactly the pod's minimal /dev plus each device
// with its letters (appDeviceRules): cgroup v1's devices controller (deny all,
// then devices.allow), or on cgroup v2 a BPF_PROG_TYPE_CGROUP_DEVICE program the
// helper attaches to the app's cgroup.
// Shared by stage0 (the flag, checks at prepare) and stage1 (the plan, the cgroups).
import fs from 'node:fs';
import path from 'node:path';
import type { NameValue } from './appc.js';

export const DEVICES_ANNOTATION = 'tspod/devices';

export interface DeviceSpec {
  hostPath: string;
  podPath: string;
  /** A non-empty subset of r, w, m (the device cgroup's access letters). */
  permissions: string;
}

/** What is wrong with a device entry (without the flag's name), or undefined. */
export function deviceProblem(d: DeviceSpec): string | undefined {
  const bad = (p: string) => !p.startsWith('/') || p.split('/').includes('..') || p.includes('\0');
  if (bad(d.hostPath)) return `${JSON.stringify(d.hostPath)}: the host path must be absolute, without ".."`;
  let st: fs.Stats;
  try {
    st = fs.statSync(d.hostPath);
  } catch (e) {
    return `${d.hostPath} does not exist (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) return `${d.hostPath} is not a device node`;
  if (bad(d.podPath) || !d.podPath.startsWith('/dev/') || path.posix.normalize(d.podPath) === '/dev') {
    return `${JSON.stringify(d.podPath)}: the path in the pod must be below /dev, without ".."`;
  }
  const rel = path.posix.normalize(d.podPath);
  if (/^\/dev\/(pts|shm)(\/|$)/.test(rel)) return `${JSON.stringify(d.podPath)}: /dev/pts and /dev/shm are the pod's own`;
  if (!/^[rwm]{1,3}$/.test(d.permissions) || new Set(d.permissions).size !== d.permissions.length) {
    return `${JSON.stringify(d.permissions)}: permissions are some of r, w and m`;
  }
  return undefined;
}

/**
 * Where no device cgroup limits the letters (no cgroups, or v1 without the
 * devices controller; `host` says what there is), only rw and rwm are honest: a
 * read-only bind does not stop writes to a device node. The first other one, as
 * a message, or undefined.
 */
export function uncheckedDeviceProblem(devices: readonly DeviceSpec[], host: string): string | undefined {
  const d = devices.find((x) => !x.permissions.includes('r') || !x.permissions.includes('w'));
  return d ? `--device ${d.hostPath}:${d.permissions} needs a device cgroup to limit its access, and this host has none (${host}): use rw or rwm` : undefined;
}

/** `HOSTPATH[:PODPATH[:rwm]]` → a spec (unchecked). */
export function parseDeviceFlag(s: string): DeviceSpec | undefined {
  const parts = s.split(':');
  if (parts.length > 3 || !parts[0]) return undefined;
  return { hostPath: parts[0], podPath: parts[1] || parts[0], permissions: parts[2] ?? 'rwm' };
}

/** The devices an app's annotations list (throws an Error for a malformed one). */
export function appDevices(annotations: readonly NameValue[] | undefined): DeviceSpec[] {
  const a = annotations?.find((x) => x.name === DEVICES_ANNOTATION);
  if (!a) return [];
  let list: unknown;
  try {
    list = JSON.parse(a.value);
  } catch {
    throw new Error(`annotation ${DEVICES_ANNOTATION} is not JSON`);
  }
  if (!Array.isArray(list)) throw new Error(`annotation ${DEVICES_ANNOTATION} must be a JSON list`);
  return list.map((d: Partial<DeviceSpec>) => {
    const spec = { hostPath: String(d?.hostPath ?? ''), podPath: String(d?.podPath ?? ''), permissions: String(d?.permissions ?? '') };
    const why = deviceProblem(spec);
    if (why) throw new Error(`device ${why}`);
    return spec;
  });
}

/** One allow rule of a device cgroup: `c 1:3 rwm` (`*` for any major or minor). */
export interface DeviceRule {
  type: 'c' | 'b';
  major: number | '*';
  minor: number | '*';
  /** A non-empty subset of r, w, m. */
  access: string;
}

/**
 * What every app may use, whatever it asks: the nodes of the pod's minimal /dev
 * (null, zero, full, random, urandom, tty bound from the host; ptmx of its devpts)
 * with rwm, and pseudo-terminal slaves (its own devpts, and the pty the helper
 * makes for an interactive pod or enter, bound as /dev/console) with rw, as
 * systemd's DevicePolicy=closed (rkt) allows them. Nothing else, not even mknod.
 */
export const POD_DEVICE_RULES: readonly DeviceRule[] = [
  { type: 'c', major: 1, minor: 3, access: 'rwm' }, // null
  { type: 'c', major: 1, minor: 5, access: 'rwm' }, // zero
  { type: 'c', major: 1, minor: 7, access: 'rwm' }, // full
  { type: 'c', major: 1, minor: 8, access: 'rwm' }, // random
  { type: 'c', major: 1, minor: 9, access: 'rwm' }, // urandom
  { type: 'c', major: 5, minor: 0, access: 'rwm' }, // tty
  { type: 'c', major: 5, minor: 2, access: 'rwm' }, // ptmx
  { type: 'c', major: 136, minor: '*', access: 'rw' }, // pts/N (and the console pty)
];

/** `c 1:3 rwm`, as cgroup v1's devices.allow and devices.list write a rule. */
export function formatDeviceRule(r: DeviceRule): string {
  return `${r.type} ${r.major}:${r.minor} ${r.access}`;
}

/** The device's type and numbers with its letters (the host node is stat'ed now). */
export function deviceRule(d: DeviceSpec): DeviceRule {
  const st = fs.statSync(d.hostPath);
  const rdev = st.rdev;
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  return { type: st.isBlockDevice() ? 'b' : 'c', major, minor, access: d.permissions };
}

/** An app's device cgroup allow list: the pod's minimal /dev, then each --device. */
export function appDeviceRules(devices: readonly DeviceSpec[]): DeviceRule[] {
  return [...POD_DEVICE_RULES, ...devices.map(deviceRule)];
}
