// `enter`: run a command inside a running pod's app, through the pod's stage1
// /enter entrypoint (which applies the app's own restrictions).
import { setTimeout as sleep } from 'node:timers/promises';
import { TspodError, ErrorCode } from '../native/errors.js';
import { sys } from '../native/sys.js';
import { readManifest, readPid } from './inspect.js';
import { PodsDir } from './pods.js';
import { stage1Entrypoint, stage1Environment } from './run.js';

export const DEFAULT_ENTER_COMMAND = '/bin/sh';

export async function enterPod(podsRoot: string, uuidPrefix: string, app: string | undefined, cmd: string[], debug: boolean): Promise<never> {
  const pods = new PodsDir(podsRoot);
  const uuid = pods.resolve(uuidPrefix);
  const pod = pods.open(uuid);
  if (!pod) throw new TspodError(ErrorCode.NotFound, `no matches found for ${JSON.stringify(uuidPrefix)}`);
  // A pod that was just started may not have written its pid yet: poll, re-checking the state.
  let pid: number | undefined;
  for (;;) {
    const state = pod.state();
    if (state !== 'running') throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" is not running`, { hint: `it is ${state}` });
    pid = readPid(pod.dir);
    if (pid) break;
    await sleep(100);
  }
  const manifest = readManifest(pod);
  const names = manifest?.apps.map((a) => a.name) ?? [];
  let appName = app;
  if (!appName) {
    if (names.length !== 1) {
      throw new TspodError(ErrorCode.BadInput, `pod "${uuid}" has ${names.length} apps (${names.join(', ')})`, {
        hint: 'specify app using "tspod enter --app= ..."',
      });
    }
    appName = names[0];
  } else if (!names.includes(appName)) {
    throw new TspodError(ErrorCode.NotFound, `pod "${uuid}" has no app ${JSON.stringify(appName)}`, { hint: `its apps: ${names.join(', ')}` });
  }
  let command = cmd;
  if (command.length === 0) {
    process.stderr.write(`tspod: no command specified, assuming "${DEFAULT_ENTER_COMMAND}"\n`);
    command = [DEFAULT_ENTER_COMMAND];
  }
  const entry = stage1Entrypoint(pod.dir, 'enter');
  const args = [entry, ...(debug ? ['--debug'] : []), `--pid=${pid}`, `--appname=${appName}`, '--', ...command];
  process.chdir(pod.dir);
  pod.close();
  return sys().execve(entry, args, stage1Environment({}));
}
