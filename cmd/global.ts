// rkt's global flags: one table, read by one function (takeGlobalFlag) wherever
// they stand, before or after the command's name. Each command's own grammar
// (cmd/main.ts, cmd/podargs.ts, cmd/enter.ts) calls it for every token that may
// be a flag, so `--debug=x` means the same in every command. Also here: the
// values of flags several commands share (--insecure-options, --pull-policy).
import { DEFAULT_DIR } from '../store/paths.js';
import { DEFAULT_LOCAL_CONFIG } from '../stage1/contract/pod.js';
import { TspodError, ErrorCode } from '../native/errors.js';
import type { PullPolicy } from '../store/fetch.js';
import type { InsecureOptions } from '../store/insecure.js';
import { parseGoDuration } from '../stage0/duration.js';
import { matchFlag, type FlagTable } from './flags.js';

export const GLOBAL_FLAGS = {
  dir: { kind: 'value', default: DEFAULT_DIR, describe: 'tspod data directory' },
  debug: { kind: 'bool', default: false, describe: 'print debug messages and stack traces' },
  'local-config': { kind: 'value', default: DEFAULT_LOCAL_CONFIG, describe: 'local configuration directory (CNI network configs in <dir>/net.d)' },
  'insecure-options': {
    kind: 'list',
    default: 'none',
    describe: 'comma-separated list of security checks to skip: none, http, tls, image, all-fetch, all (given twice, the lists add up)',
  },
} as const satisfies FlagTable;

export interface GlobalArgs {
  dir: string;
  debug: boolean;
  localConfig: string;
  /** Each --insecure-options value as given (each a comma list); none: []. */
  insecureOptions: string[];
}

export function defaultGlobals(): GlobalArgs {
  return { dir: DEFAULT_DIR, debug: false, localConfig: DEFAULT_LOCAL_CONFIG, insecureOptions: [] };
}

/** If tokens[i] is a global flag, applies it to `into` and returns the index of the token after it; else undefined. */
export function takeGlobalFlag(tokens: readonly string[], i: number, into: GlobalArgs): number | undefined {
  const m = matchFlag(tokens, i, GLOBAL_FLAGS);
  if (!m) return undefined;
  const name = m.name as keyof typeof GLOBAL_FLAGS;
  // An empty directory would be the current one: a store made wherever tspod was started.
  if ((name === 'dir' || name === 'local-config') && m.value === '') throw new TspodError(ErrorCode.BadInput, `--${name} is empty`, { hint: 'give a directory' });
  if (name === 'debug') into.debug = m.value === true;
  else if (name === 'dir') into.dir = String(m.value);
  else if (name === 'local-config') into.localConfig = String(m.value);
  else into.insecureOptions.push(String(m.value));
  return m.next;
}

/** A command's arguments without the global flags (applied to `into`); a `--` and what follows are kept as they are. */
export function stripGlobalFlags(tokens: readonly string[], into: GlobalArgs): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; ) {
    if (tokens[i] === '--') return [...out, ...tokens.slice(i)];
    const next = takeGlobalFlag(tokens, i, into);
    if (next === undefined) out.push(tokens[i++]);
    else i = next;
  }
  return out;
}

const INSECURE_GROUPS: Record<string, (keyof InsecureOptions)[]> = {
  none: [],
  http: ['http'],
  tls: ['tls'],
  image: ['image'],
  pubkey: [],
  ondisk: [],
  capabilities: ['capabilities'],
  paths: ['paths'],
  seccomp: ['seccomp'],
  isolators: ['isolators'],
  'all-fetch': ['http', 'tls', 'image'],
  'all-run': ['capabilities', 'paths', 'seccomp', 'isolators'],
  all: ['http', 'tls', 'image', 'capabilities', 'paths', 'seccomp', 'isolators'],
};

/** rkt's --insecure-options: comma lists of checks to skip; several add up. */
export function parseInsecureOptions(values: readonly string[]): InsecureOptions {
  const out: InsecureOptions = { http: false, tls: false, image: false, capabilities: false, paths: false, seccomp: false, isolators: false };
  for (const raw of values.join(',').split(',')) {
    const word = raw.trim().toLowerCase();
    if (!word) continue;
    const keys = Object.hasOwn(INSECURE_GROUPS, word) ? INSECURE_GROUPS[word] : undefined;
    if (!keys) {
      throw new TspodError(ErrorCode.BadInput, `unknown --insecure-options value ${JSON.stringify(word)}`, {
        hint: `use a comma list of ${Object.keys(INSECURE_GROUPS).join(', ')}`,
      });
    }
    for (const k of keys) out[k] = true;
  }
  return out;
}

export function insecureFrom(globals: GlobalArgs): InsecureOptions {
  return parseInsecureOptions(globals.insecureOptions);
}

export function parsePullPolicy(s: string): PullPolicy {
  if (s === 'new' || s === 'update' || s === 'never') return s;
  throw new TspodError(ErrorCode.BadInput, `invalid --pull-policy ${JSON.stringify(s)}`, { hint: 'use new, update or never' });
}

/** --pull-policy, or rkt's older names for it: --no-store (= update) and --store-only (= never). */
export function pullPolicyFromFlags(f: { pullPolicy?: string; noStore?: boolean; storeOnly?: boolean }, fallback: PullPolicy): PullPolicy {
  if (f.noStore && f.storeOnly) throw new TspodError(ErrorCode.BadInput, 'both --store-only and --no-store specified');
  const alias = f.noStore ? 'update' : f.storeOnly ? 'never' : undefined;
  if (alias && f.pullPolicy !== undefined && f.pullPolicy !== alias) {
    throw new TspodError(ErrorCode.BadInput, `--${f.noStore ? 'no-store' : 'store-only'} conflicts with --pull-policy=${f.pullPolicy}`, { hint: 'give one of them' });
  }
  return parsePullPolicy(f.pullPolicy ?? alias ?? fallback);
}

/** A duration flag's value (Go's syntax, as rkt's flags take them). */
export function parseDuration(s: string, flag: string): number {
  const ms = parseGoDuration(s);
  if (ms === undefined) {
    throw new TspodError(ErrorCode.BadInput, `invalid duration ${JSON.stringify(s)} for --${flag}`, { hint: 'use a Go-style duration such as 30m, 24h or 1h30m' });
  }
  return ms;
}
