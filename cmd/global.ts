// Flags every command takes (rkt's global flags).
import type { Options } from 'yargs';
import { DEFAULT_DIR } from '../store/paths.js';
import { parseInsecureOptions, type InsecureOptions } from '../store/insecure.js';

export const globalOptions = {
  dir: { type: 'string', default: DEFAULT_DIR, describe: 'tspod data directory', global: true },
  debug: { type: 'boolean', default: false, describe: 'print debug messages and stack traces', global: true },
  'insecure-options': {
    type: 'string',
    default: 'none',
    describe: 'comma-separated list of security checks to skip: none, http, tls, image, all-fetch, all',
    global: true,
  },
} satisfies Record<string, Options>;

export interface GlobalArgs {
  dir: string;
  debug: boolean;
  'insecure-options': string;
}

export function insecureFrom(args: GlobalArgs): InsecureOptions {
  return parseInsecureOptions(args['insecure-options']);
}
