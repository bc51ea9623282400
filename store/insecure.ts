// rkt's --insecure-options: a comma list of checks to skip.
import { TspodError, ErrorCode } from '../native/errors.js';

export interface InsecureOptions {
  /** Allow plain-HTTP registries and URLs. */
  http: boolean;
  /** Accept any TLS certificate. */
  tls: boolean;
  /** Skip image signature checks. */
  image: boolean;
  /** Stage1 run-time relaxations (passed on by later issues). */
  capabilities: boolean;
  paths: boolean;
  seccomp: boolean;
  /** Run apps whose isolators this version does not apply yet (stage0/isolators.ts). */
  isolators: boolean;
}

const GROUPS: Record<string, (keyof InsecureOptions)[]> = {
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

export function parseInsecureOptions(s: string | undefined): InsecureOptions {
  const out: InsecureOptions = { http: false, tls: false, image: false, capabilities: false, paths: false, seccomp: false, isolators: false };
  for (const raw of (s ?? 'none').split(',')) {
    const word = raw.trim().toLowerCase();
    if (!word) continue;
    const keys = GROUPS[word];
    if (!keys) {
      throw new TspodError(ErrorCode.Usage, `unknown --insecure-options value ${JSON.stringify(word)}`, {
        hint: `use a comma list of ${Object.keys(GROUPS).join(', ')}`,
      });
    }
    for (const k of keys) out[k] = true;
  }
  return out;
}
