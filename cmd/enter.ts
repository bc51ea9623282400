// `tspod enter [--app=NAME] UUID [CMD [ARGS...]]`: everything after the UUID is
// the command, flags included (an optional `--` before it is dropped), so it is
// parsed here rather than by yargs.
import fs from 'node:fs';
import { TspodError, ErrorCode } from '../native/errors.js';
import { requireRoot } from '../native/libc.js';
import { enterPod } from '../stage0/enter.js';
import { StorePaths } from '../store/paths.js';
import type { GlobalArgs } from './global.js';

export const ENTER_USAGE = `Usage: tspod enter [--app=NAME] UUID|--uuid-file=FILE [CMD [ARGS...]]

Runs CMD (default /bin/sh) in a running pod's app, with the app's environment,
credentials and restrictions. --app is needed when the pod has several apps.
`;

export async function enterCommand(rest: string[], globals: GlobalArgs): Promise<number> {
  let app: string | undefined;
  let uuidFile: string | undefined;
  let i = 0;
  for (; i < rest.length; i++) {
    const tok = rest[i];
    if (tok === '--help' || tok === '-h') {
      process.stdout.write(ENTER_USAGE);
      return 0;
    }
    const m = /^--(app|dir|debug|insecure-options|uuid-file)(?:=(.*))?$/.exec(tok);
    if (!m) {
      if (tok.startsWith('-')) throw new TspodError(ErrorCode.Usage, `unknown flag ${tok}`, { hint: 'usage: tspod enter [--app=NAME] UUID [CMD...]' });
      break;
    }
    if (m[1] === 'debug') globals.debug = m[2] !== 'false';
    else {
      const value = m[2] ?? rest[++i];
      if (value === undefined) throw new TspodError(ErrorCode.Usage, `--${m[1]} needs a value`);
      if (m[1] === 'app') app = value;
      else if (m[1] === 'uuid-file') uuidFile = value;
      else if (m[1] === 'dir') globals.dir = value;
      else globals['insecure-options'] = value;
    }
  }
  // With --uuid-file, everything after the flags is the command.
  let uuid: string | undefined;
  if (uuidFile !== undefined) {
    try {
      uuid = fs.readFileSync(uuidFile, 'utf8').trim();
    } catch (e) {
      throw new TspodError(ErrorCode.BadInput, `--uuid-file ${JSON.stringify(uuidFile)} cannot be read: ${(e as NodeJS.ErrnoException).code}`);
    }
  } else {
    uuid = rest[i++];
  }
  if (uuid === undefined) throw new TspodError(ErrorCode.BadInput, 'UUID cannot be empty', { hint: 'usage: tspod enter [--app=NAME] UUID [CMD...]' });
  let cmd = rest.slice(i);
  if (cmd[0] === '--') cmd = cmd.slice(1);
  requireRoot('enter');
  return enterPod(new StorePaths(globals.dir).podsDir, uuid, app, cmd, globals.debug);
}
