// stage1 /enter: `[--debug] --pid=PID --appname=APP -- CMD [ARGS...]`, CWD = the
// pod directory. Execs the helper's enter mode with the app's own credentials,
// capability set and environment, so enter never grants more than the app has.
import path from 'node:path';
import fs from 'node:fs';
import { sys } from '../native/sys.js';
import { POD_FILES, type AppSecurity } from './contract/pod.js';
import { readJson } from './pod-setup.js';
import { helperPath } from './sea.js';

export function parseEnterArgs(argv: string[]): { pid: number; app: string; cmd: string[]; debug: boolean } {
  let pid = 0;
  let app = '';
  let debug = false;
  let i = 0;
  for (; i < argv.length && argv[i] !== '--'; i++) {
    const a = argv[i];
    if (a.startsWith('--pid=')) pid = Number(a.slice(6));
    else if (a.startsWith('--appname=')) app = a.slice(10);
    else if (a === '--debug') debug = true;
    else throw new Error(`unknown argument ${a}`);
  }
  const cmd = argv.slice(i + 1);
  if (!pid || !app || !cmd.length) throw new Error('usage: enter --pid=PID --appname=APP -- CMD [ARGS...]');
  return { pid, app, cmd, debug };
}

export async function main(argv: string[]): Promise<number> {
  const { pid, app, cmd, debug } = parseEnterArgs(argv);
  const podDir = process.cwd();
  const sec = readJson<AppSecurity>(path.join(podDir, POD_FILES.appSecurity(app)));
  const appPid = fs.readFileSync(path.join(podDir, POD_FILES.appPid(app)), 'utf8').trim();
  const args = [
    'tspod-helper',
    'enter',
    `--pid=${pid}`,
    `--app-pid=${appPid}`,
    `--env-file=${path.join(podDir, POD_FILES.appEnv(app))}`,
    `--user=${sec.user}`,
    `--group=${sec.group}`,
    `--supplementary-gids=${sec.supplementaryGids.length ? sec.supplementaryGids.join(',') : '-'}`,
    `--capabilities=${sec.capabilities ?? '-'}`,
    `--no-new-privileges=${sec.noNewPrivileges ? 1 : 0}`,
    `--cwd=${sec.cwd}`,
    ...(sec.oomScoreAdj !== undefined ? [`--oom-score-adj=${sec.oomScoreAdj}`] : []),
    `--seccomp=${sec.seccomp ? `${sec.seccomp.mode}:${sec.seccomp.errnoNumber}:${sec.seccomp.syscalls.join(',') || '-'}` : '-'}`,
    '--',
    ...cmd,
  ];
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  if (process.env.TERM) env.TERM = process.env.TERM;
  if (debug) env.TSPOD_DEBUG = '1';
  return sys().execve(helperPath(), args, env);
}
