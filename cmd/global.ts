// Flags every command takes (rkt's global flags).
import type { Options } from 'yargs';
import { DEFAULT_DIR } from '../store/paths.js';
import { DEFAULT_LOCAL_CONFIG } from '../stage1/contract/pod.js';
import { TspodError, ErrorCode } from '../native/errors.js';
import { parsePullPolicy, type PullPolicy } from '../store/fetch.js';
import { parseInsecureOptions, type InsecureOptions } from '../store/insecure.js';

export const globalOptions = {
  dir: { type: 'string', default: DEFAULT_DIR, describe: 'tspod data directory', global: true },
  debug: { type: 'boolean', default: false, describe: 'print debug messages and stack traces', global: true },
  'local-config': { type: 'string', default: DEFAULT_LOCAL_CONFIG, describe: 'local configuration directory (CNI network configs in <dir>/net.d)', global: true },
  'insecure-options': {
    type: 'string',
    default: 'none',
    describe: 'comma-separated list of security checks to skip: none, http, tls, image, all-fetch, all',
    global: true,
    // Given more than once, the lists add up (as rkt's).
    coerce: (v: string | string[]) => (Array.isArray(v) ? mergeInsecureOptions(v) : v),
  },
} satisfies Record<string, Options>;

export interface GlobalArgs {
  dir: string;
  debug: boolean;
  'insecure-options': string;
  'local-config': string;
}

/** Several --insecure-options values are one comma list. */
export function mergeInsecureOptions(values: readonly string[]): string {
  return values.filter((v) => v !== '').join(',') || 'none';
}

export function insecureFrom(args: GlobalArgs): InsecureOptions {
  return parseInsecureOptions(args['insecure-options']);
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
