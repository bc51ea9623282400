// `stop`: SIGTERM to the pod's pid 1 (the helper's init forwards it to the apps and
// stops them in order); --force sends SIGKILL, which ends the whole pid namespace.
import { TspodError, ErrorCode } from '../native/errors.js';
import { readManifest, readPid } from './inspect.js';
import { thawIfPaused } from './resources.js';
import { PodsDir } from './pods.js';

export type StopOutcome = 'stopped' | 'already-stopped';

export function stopPod(podsRoot: string, uuidPrefix: string, force: boolean): { uuid: string; outcome: StopOutcome } {
  const pods = new PodsDir(podsRoot);
  const uuid = pods.resolve(uuidPrefix);
  const pod = pods.open(uuid);
  if (!pod) throw new TspodError(ErrorCode.NotFound, `no matches found for ${JSON.stringify(uuidPrefix)}`);
  try {
    const state = pod.state();
    if (state !== 'running') {
      if (state === 'prepared' || state === 'preparing' || state === 'aborted prepare' || state === 'embryo') {
        throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" is ${state}: it has not been started`);
      }
      return { uuid, outcome: 'already-stopped' };
    }
    const pid = readPid(pod.dir);
    if (!pid) throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" is starting: try again in a moment`);
    // A paused pod is thawed first: its apps must see the SIGTERM (a frozen v1 task acts on no signal).
    thawIfPaused(uuid, (readManifest(pod)?.apps ?? []).map((a) => a.name));
    try {
      process.kill(pid, force ? 'SIGKILL' : 'SIGTERM');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return { uuid, outcome: 'already-stopped' };
      throw e;
    }
    return { uuid, outcome: 'stopped' };
  } finally {
    pod.close();
  }
}
