// Image and pod-manifest isolators (appc spec/ace.md "Isolators"). tspod applies
// os/linux/no-new-privileges, the capability sets, the seccomp sets,
// os/linux/oom-score-adj, os/unix/sysctl (namespaced ones only) and the cgroup
// limits (resource/memory, resource/cpu, os/linux/cpu-shares and tspod's
// tspod/pids-limit) today (their values are checked here); every other isolator
// that limits or confines an app (block and network bandwidth, LSM labels) is not
// applied yet, and an app that asked for one must not run as if it had not:
// prepare refuses it, naming the isolator, unless --insecure-options=isolators
// says to run without it (then each one is named in a warning). Unknown
// isolator names are only warned about, as the spec allows.
import { TspodError, ErrorCode } from '../native/errors.js';
import { log } from '../native/log.js';
import type { AppcIsolator } from '../stage1/contract/appc.js';
import { capabilitiesFromIsolators, CAPS_REMOVE, CAPS_RETAIN } from '../stage1/contract/capabilities.js';
import { isolatorSyscallNames, SECCOMP_REMOVE, SECCOMP_RETAIN } from '../stage1/contract/seccomp.js';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { limitsFromIsolators, RESOURCE_ISOLATORS } from '../stage1/contract/resources.js';
import { SYSCTL, sysctlsFromIsolators } from '../stage1/contract/sysctl.js';

export const OOM_SCORE_ADJ = 'os/linux/oom-score-adj';

/** Isolators stage1 applies. */
const APPLIED = new Set(['os/linux/no-new-privileges', CAPS_RETAIN, CAPS_REMOVE, OOM_SCORE_ADJ, SECCOMP_RETAIN, SECCOMP_REMOVE, ...RESOURCE_ISOLATORS, SYSCTL]);

/** Isolators appc or rkt define that this version does not apply. */
const NOT_APPLIED = new Set([
  'os/linux/selinux-context',
  'os/linux/apparmor-profile',
  'resource/block-bandwidth',
  'resource/block-iops',
  'resource/network-bandwidth',
]);

/**
 * Checks the isolators of one app (`where` names it in messages: `app web`, or
 * `the pod` for pod-level isolators). Throws for one that is not applied
 * unless `runAnyway`; warns about unknown ones.
 */
export function checkIsolators(where: string, isolators: readonly AppcIsolator[] | undefined, runAnyway: boolean, scope: 'app' | 'pod' = 'app'): void {
  checkAppliedValues(where, isolators);
  for (const iso of isolators ?? []) {
    const name = String(iso?.name ?? '');
    if (scope === 'pod' && (name === SECCOMP_RETAIN || name === SECCOMP_REMOVE)) {
      // rkt has them per app only: a pod-level one would bound every app's
      throw new TspodError(ErrorCode.Unsupported, `${where}: isolator ${JSON.stringify(name)} is applied per app only`, {
        hint: 'put it in the app (image manifest, pod manifest app, or --seccomp after the image)',
      });
    }
    if (APPLIED.has(name)) continue;
    if (!NOT_APPLIED.has(name)) {
      log().warn(`${where}: unknown isolator ${JSON.stringify(name)} ignored`);
      continue;
    }
    if (runAnyway) {
      log().warn(`${where}: isolator ${JSON.stringify(name)} is not applied by this version of tspod (--insecure-options=isolators)`);
      continue;
    }
    throw new TspodError(ErrorCode.Unsupported, `${where}: isolator ${JSON.stringify(name)} is not applied by this version of tspod`, {
      hint: 'give --insecure-options=isolators to run without it',
    });
  }
}

/** -1000..1000 from a string or a JSON value; undefined if it is not one. */
export function parseOomScoreAdj(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^[+-]?\d{1,5}$/.test(v.trim()) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= -1000 && n <= 1000 ? n : undefined;
}

/** The values of the isolators tspod applies: a bad one is refused (never ignored). */
function checkAppliedValues(where: string, isolators: readonly AppcIsolator[] | undefined): void {
  try {
    capabilitiesFromIsolators(isolators);
    limitsFromIsolators(isolators);
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, `${where}: ${(e as Error).message}`);
  }
  let syscalls: string[];
  try {
    syscalls = isolatorSyscallNames(isolators);
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, `${where}: ${(e as Error).message}`);
  }
  const unknown = unknownSyscalls(syscalls);
  if (unknown.length) {
    throw new TspodError(ErrorCode.BadInput, `${where}: unknown syscall ${unknown.map((n) => JSON.stringify(n)).join(', ')} in its seccomp set (not a system call of this machine's architecture)`);
  }
  try {
    sysctlsFromIsolators(isolators);
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, `${where}: ${(e as Error).message}`);
  }
  const ooms = (isolators ?? []).filter((i) => i?.name === OOM_SCORE_ADJ);
  if (ooms.length > 1) throw new TspodError(ErrorCode.BadInput, `${where}: isolator ${OOM_SCORE_ADJ} given twice`);
  if (ooms.length && parseOomScoreAdj(ooms[0].value) === undefined) {
    throw new TspodError(ErrorCode.BadInput, `${where}: isolator ${OOM_SCORE_ADJ}: ${JSON.stringify(ooms[0].value)} is not an integer from -1000 to 1000`);
  }
}

/** The image's isolators with those of the flags' kinds replaced by the flags' (rkt's --caps-*, --seccomp, --oom-score-adj). */
export function overrideIsolators(image: readonly AppcIsolator[] | undefined, flags: readonly AppcIsolator[]): AppcIsolator[] {
  const kind = (n: string) => (n === CAPS_RETAIN || n === CAPS_REMOVE ? 'caps' : n === SECCOMP_RETAIN || n === SECCOMP_REMOVE ? 'seccomp' : n);
  const kinds = new Set(flags.map((f) => kind(f.name)));
  return [...(image ?? []).filter((i) => !kinds.has(kind(String(i?.name)))), ...flags];
}

/**
 * The names that are no syscall of this machine's architectures, as libseccomp
 * (in the helper beside this tspod: `tspod-helper seccomp-check`) knows them.
 * Without a helper there (a partial build), nothing is refused here: the pod's
 * helper refuses the plan at run.
 */
export function unknownSyscalls(names: readonly string[]): string[] {
  if (!names.length) return [];
  const helper = checkHelper();
  if (!helper) {
    log().debug('no tspod-helper beside tspod: syscall names are checked at run');
    return [];
  }
  const r = spawnSync(helper, ['seccomp-check', ...new Set(names)], { encoding: 'utf8', env: {}, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 0) return [];
  if (r.status === 1) return r.stdout.split('\n').filter(Boolean);
  throw new TspodError(ErrorCode.System, `checking syscall names with ${helper} failed: ${r.error?.message ?? (r.stderr.trim() || `exit ${r.status}`)}`);
}

/** bin/tspod-helper beside bin/tspod-js/ (TSPOD_HELPER overrides, for tests); undefined if missing. */
function checkHelper(): string | undefined {
  const env = process.env.TSPOD_HELPER;
  if (env) return env;
  try {
    const main = fs.realpathSync(process.argv[1] ?? fileURLToPath(import.meta.url));
    const p = path.join(path.dirname(path.dirname(main)), 'tspod-helper');
    fs.accessSync(p, fs.constants.X_OK);
    return p;
  } catch {
    return undefined;
  }
}
