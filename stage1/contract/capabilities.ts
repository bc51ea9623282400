// Linux capability names (capability.h) and appc's capability isolators
// (spec/ace.md: os/linux/capabilities-retain-set, -remove-set, each with a
// value of {"set": ["CAP_NET_RAW", ...]}). Shared by stage0 (validation at
// prepare) and stage1 (the mask it gives the helper).
import type { AppcIsolator } from './appc.js';

export const CAPABILITY_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

export const CAPS_RETAIN = 'os/linux/capabilities-retain-set';
export const CAPS_REMOVE = 'os/linux/capabilities-remove-set';

/** appc's default bounding set (spec/ace.md), as capability numbers. */
export const DEFAULT_CAPABILITIES = [
  'CAP_AUDIT_WRITE', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_KILL', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_NET_BIND_SERVICE', 'CAP_SETUID', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETFCAP', 'CAP_SYS_CHROOT',
].map((n) => CAPABILITY_NAMES.indexOf(n));

/** `net_raw`, `NET_RAW`, `CAP_NET_RAW` → `CAP_NET_RAW`; undefined if unknown. */
export function capabilityName(s: string): string | undefined {
  const up = s.trim().toUpperCase();
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  return CAPABILITY_NAMES.includes(full) ? full : undefined;
}

/**
 * The capability set of an app's isolators: undefined when it has none (the
 * default applies). Throws an Error (message without the app's name) for a
 * malformed value, an unknown name, or both kinds in one app.
 */
export function capabilitiesFromIsolators(isolators: readonly AppcIsolator[] | undefined): number[] | undefined {
  const caps = (isolators ?? []).filter((i) => i?.name === CAPS_RETAIN || i?.name === CAPS_REMOVE);
  if (!caps.length) return undefined;
  if (caps.length > 1) throw new Error(`only one of ${CAPS_RETAIN} and ${CAPS_REMOVE} may be given, once`);
  const iso = caps[0];
  const set = (iso.value as { set?: unknown } | null)?.set;
  if (!Array.isArray(set) || !set.every((s) => typeof s === 'string')) throw new Error(`isolator ${iso.name}: the value must be {"set": ["CAP_...", ...]}`);
  const nums = set.map((s: string) => {
    const n = capabilityName(s);
    if (!n) throw new Error(`isolator ${iso.name}: unknown capability ${JSON.stringify(s)}`);
    return CAPABILITY_NAMES.indexOf(n);
  });
  if (iso.name === CAPS_RETAIN) return [...new Set(nums)].sort((a, b) => a - b);
  return DEFAULT_CAPABILITIES.filter((c) => !nums.includes(c));
}

export function capabilityMask(caps: number[]): string {
  return caps.reduce((m, c) => m | (1n << BigInt(c)), 0n).toString(16);
}
