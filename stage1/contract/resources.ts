// appc's resource isolators and tspod's pids limit: what an app (or the pod) is
// limited to. Shared by stage0 (checked at prepare, from the flags and the
// image) and stage1 (written into the cgroups at run).
//
//   resource/memory      {"limit": "256M", "request": ...}   bytes, k8s quantity
//   resource/cpu         {"limit": "500m", "request": ...}   CPUs, k8s quantity
//   os/linux/cpu-shares  2..262144 (a number, or {"value": N}) cgroup v1 cpu.shares
//   tspod/pids-limit     1..4194304, or "max"                 pids.max
// Requests are accepted and not enforced (as in rkt): only limits are.
import type { AppcIsolator } from './appc.js';

export const MEMORY = 'resource/memory';
export const CPU = 'resource/cpu';
export const CPU_SHARES = 'os/linux/cpu-shares';
export const PIDS_LIMIT = 'tspod/pids-limit';
export const RESOURCE_ISOLATORS = [MEMORY, CPU, CPU_SHARES, PIDS_LIMIT];

/**
 * The smallest memory limit tspod accepts. The kernel takes anything on an empty
 * cgroup (0 and 1 byte included, rounded down to pages), but an app cannot even
 * be exec'd below a few megabytes: it would be OOM-killed before it ran.
 */
export const MIN_MEMORY = 4 * 1024 * 1024;
/** cgroup's CFS period (µs) and the kernel's smallest quota (1 ms): 10m CPUs. */
export const CPU_PERIOD_US = 100000;
export const MIN_CPU_MILLIS = 10;
/** The pids limit of an app that sets none. */
export const DEFAULT_PIDS_LIMIT = 4096;
export const MAX_PIDS = 4194304;

export interface Limits {
  memory?: number; // bytes
  cpuMillis?: number; // thousandths of a CPU
  cpuShares?: number;
  /** undefined: the default; 'max': no limit. */
  pids?: number | 'max';
}

const SUFFIX: Record<string, number> = {
  '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, m: 1e-3,
};

/**
 * A Kubernetes/appc quantity (`256M`, `128Mi`, `1.5G`, `500m`, `2`, `1e9`) as a
 * number, or undefined if it is not one.
 */
export function parseQuantity(s: unknown): number | undefined {
  if (typeof s === 'number') return Number.isFinite(s) && s >= 0 ? s : undefined;
  if (typeof s !== 'string') return undefined;
  const m = /^\+?(\d+(?:\.\d*)?|\.\d+)(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|m)?)$/.exec(s.trim());
  if (!m) return undefined;
  const v = Number(m[1] + (m[2] ?? '')) * SUFFIX[m[3] ?? ''];
  return Number.isFinite(v) ? v : undefined;
}

/** Memory quantity → bytes (rounded up), or an error message. */
export function parseMemory(s: unknown): number | string {
  const v = parseQuantity(s);
  if (v === undefined) return `${JSON.stringify(s)} is not a quantity (like 256M, 512Mi, 1G)`;
  const bytes = Math.ceil(v);
  if (bytes < MIN_MEMORY) return `${JSON.stringify(s)} is below the smallest memory limit tspod accepts (4Mi)`;
  if (bytes > Number.MAX_SAFE_INTEGER) return `${JSON.stringify(s)} is too large`;
  return bytes;
}

/** CPU quantity → thousandths of a CPU (rounded up), or an error message. */
export function parseCpu(s: unknown): number | string {
  const v = parseQuantity(s);
  if (v === undefined) return `${JSON.stringify(s)} is not a quantity (like 500m, 1, 1.5)`;
  const millis = Math.ceil(v * 1000 - 1e-9);
  if (millis < MIN_CPU_MILLIS) return `${JSON.stringify(s)} is below the smallest CPU limit (10m: the kernel's 1 ms per 100 ms period)`;
  if (millis > 1e9) return `${JSON.stringify(s)} is too large`;
  return millis;
}

export function parseCpuShares(s: unknown): number | string {
  const v = typeof s === 'number' ? s : typeof s === 'string' && /^\d{1,7}$/.test(s.trim()) ? Number(s) : NaN;
  if (!Number.isInteger(v) || v < 2 || v > 262144) return `${JSON.stringify(s)} is not an integer from 2 to 262144`;
  return v;
}

export function parsePidsLimit(s: unknown): number | 'max' | string {
  if (s === 'max' || s === 'unlimited' || s === -1 || s === 0 || s === '-1' || s === '0') return 'max';
  const v = typeof s === 'number' ? s : typeof s === 'string' && /^\d{1,8}$/.test(s.trim()) ? Number(s) : NaN;
  if (!Number.isInteger(v) || v < 1 || v > MAX_PIDS) return `${JSON.stringify(s)} is not a number of processes from 1 to ${MAX_PIDS} (or max)`;
  return v;
}

function one(isolators: readonly AppcIsolator[], name: string): AppcIsolator | undefined {
  const all = isolators.filter((i) => i?.name === name);
  if (all.length > 1) throw new Error(`isolator ${name} given twice`);
  return all[0];
}

/** The limit of a resource/* isolator's value ({"limit": …}); undefined if it has only a request. */
function limitOf(iso: AppcIsolator): unknown {
  const v = iso.value as { limit?: unknown; request?: unknown } | null;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`isolator ${iso.name}: the value must be {"limit": QUANTITY}`);
  if (v.request !== undefined && parseQuantity(v.request) === undefined) throw new Error(`isolator ${iso.name}: request ${JSON.stringify(v.request)} is not a quantity`);
  return v.limit;
}

/**
 * The limits of an app's (or the pod's) isolators. Throws an Error (message
 * without the app's name) for a malformed value.
 */
export function limitsFromIsolators(isolators: readonly AppcIsolator[] | undefined): Limits {
  const list = isolators ?? [];
  const out: Limits = {};
  const mem = one(list, MEMORY);
  if (mem) {
    const l = limitOf(mem);
    if (l !== undefined) {
      const v = parseMemory(l);
      if (typeof v === 'string') throw new Error(`isolator ${MEMORY}: limit ${v}`);
      out.memory = v;
    }
  }
  const cpu = one(list, CPU);
  if (cpu) {
    const l = limitOf(cpu);
    if (l !== undefined) {
      const v = parseCpu(l);
      if (typeof v === 'string') throw new Error(`isolator ${CPU}: limit ${v}`);
      out.cpuMillis = v;
    }
  }
  const shares = one(list, CPU_SHARES);
  if (shares) {
    const raw = shares.value && typeof shares.value === 'object' ? (shares.value as { value?: unknown }).value : shares.value;
    const v = parseCpuShares(raw);
    if (typeof v === 'string') throw new Error(`isolator ${CPU_SHARES}: ${v}`);
    out.cpuShares = v;
  }
  const pids = one(list, PIDS_LIMIT);
  if (pids) {
    const v = parsePidsLimit(pids.value);
    if (typeof v === 'string' && v !== 'max') throw new Error(`isolator ${PIDS_LIMIT}: ${v}`);
    out.pids = v;
  }
  return out;
}
