// `tspod enter [--app=NAME] UUID [CMD [ARGS...]]`: everything after the UUID is
// the command, flags included (an optional `--` before it is dropped), so it is
// parsed here rather than by yargs.
import fs from 'node:fs';
import { TspodError, ErrorCode } from '../native/errors.js';
import { requireRoot } from './require-root.js';
import { enterPod } from '../stage0/enter.js';
import { StorePaths } from '../store/paths.js';
import { matchFlag, type FlagTable } from './flags.js';
import { takeGlobalFlag, type GlobalArgs } from './global.js';

export const ENTER_USAGE = `Usage: tspod enter [--app=NAME] UUID|--uuid-file=FILE [CMD [ARGS...]]

Runs CMD (default /bin/sh) in a running pod's app, with the app's environment,
credentials and restrictions. --app is needed when the pod has several apps.
`;

export const ENTER_FLAGS = {
  app: { kind: 'value', describe: 'the app to enter (needed when the pod has several)' },
  'uuid-file': { kind: 'value', describe: 'read the pod UUID from this file' },
} as const satisfies FlagTable;

export interface EnterArgs {
  help: boolean;
  app?: string;
  uuidFile?: string;
  /** Undefined with --uuid-file (or when missing). */
  uuid?: string;
  cmd: string[];
}

/** enter's flags (and the global ones, applied to `globals`) up to the UUID; the rest is the command. */
export function parseEnterArgs(rest: readonly string[], globals: GlobalArgs): EnterArgs {
  const out: EnterArgs = { help: false, cmd: [] };
  let i = 0;
  while (i < rest.length) {
    const tok = rest[i];
    if (tok === '--help' || tok === '-h') return { ...out, help: true };
    const next = takeGlobalFlag(rest, i, globals);
    if (next !== undefined) {
      i = next;
      continue;
    }
    const m = matchFlag(rest, i, ENTER_FLAGS);
    if (!m) {
      if (tok.startsWith('-') && tok !== '--') throw new TspodError(ErrorCode.Usage, `unknown flag ${tok}`, { hint: 'usage: tspod enter [--app=NAME] UUID [CMD...]' });
      break;
    }
    if (m.name === 'app') out.app = String(m.value);
    else out.uuidFile = String(m.value);
    i = m.next;
  }
  // With --uuid-file, everything after the flags is the command.
  if (out.uuidFile === undefined) out.uuid = rest[i++];
  out.cmd = rest.slice(rest[i] === '--' ? i + 1 : i);
  return out;
}

export async function enterCommand(a: EnterArgs, globals: GlobalArgs): Promise<number> {
  if (a.help) {
    process.stdout.write(ENTER_USAGE);
    return 0;
  }
  let uuid = a.uuid;
  if (a.uuidFile !== undefined) {
    try {
      uuid = fs.readFileSync(a.uuidFile, 'utf8').trim();
    } catch (e) {
      throw new TspodError(ErrorCode.BadInput, `--uuid-file ${JSON.stringify(a.uuidFile)} cannot be read: ${(e as NodeJS.ErrnoException).code}`);
    }
  }
  if (uuid === undefined) throw new TspodError(ErrorCode.BadInput, 'UUID cannot be empty', { hint: 'usage: tspod enter [--app=NAME] UUID [CMD...]' });
  requireRoot('enter');
  return enterPod(new StorePaths(globals.dir).podsDir, uuid, a.app, a.cmd, globals.debug);
}
