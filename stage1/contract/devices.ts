// Per-app host devices (`--device=HOSTPATH[:PODPATH[:rwm]]`, podman's syntax):
// stored in the pod manifest as the app's annotation tspod/devices, a JSON list of
// {hostPath, podPath, permissions}. stage1 binds each host device node onto
// PODPATH (below the app's /dev) in that app's rootfs; read-only for `r` alone.
// Shared by stage0 (the flag, checks at prepare) and stage1 (the plan).
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

/**
 * Whether the pod's device cgroup limits each --device to its letters. Until it
 * does, only rw and rwm are accepted: a read-only bind mount does not stop writes
 * to a device node (the kernel checks read-only mounts for regular files,
 * directories and links only), and a missing `m` is kept anyway (every place an app
 * can write is nodev, so a node it makes cannot be opened).
 */
export const DEVICE_CGROUP_ENFORCED = false;

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
  if (!DEVICE_CGROUP_ENFORCED && !(d.permissions.includes('r') && d.permissions.includes('w'))) {
    return `${d.hostPath}:${d.permissions}: only rw and rwm for now (nothing would stop the app from ${d.permissions.includes('r') ? 'writing' : 'reading'} the device until the device cgroup limits it)`;
  }
  return undefined;
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

/** The device's type and numbers, as the device cgroup writes them: `c 10:200`. */
export function deviceRule(d: DeviceSpec): string {
  const st = fs.statSync(d.hostPath);
  const rdev = st.rdev;
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  return `${st.isBlockDevice() ? 'b' : 'c'} ${major}:${minor} ${d.permissions}`;
}
