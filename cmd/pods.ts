// Pod commands: prepare, run, run-prepared, stop, status, list, cat-manifest,
// rm, gc, export, stats, pause, resume (rkt's outputs, printed by cmd/output.ts).
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { TspodError, ErrorCode } from '../native/errors.js';
import { requireRoot } from './require-root.js';
import { exportPod } from '../stage0/export.js';
import { gcHostNetworks, gcPods, registerOrDelete, removePod } from '../stage0/gc.js';
import { checkMetadataService } from '../stage0/mds/client.js';
import { podStatus, readManifest, type PodStatus } from '../stage0/inspect.js';
import { PodsDir } from '../stage0/pods.js';
import { preparePod } from '../stage0/prepare.js';
import { checkMdsNet, runJustPrepared } from '../stage0/run.js';
import { stopPod } from '../stage0/stop.js';
import { podStats, setPodPaused } from '../stage0/resources.js';
import { StorePaths } from '../store/paths.js';
import { withStore } from '../store/store.js';
import { checkNetworksExist } from '../stage0/spec.js';
import { command, type Command } from './command.js';
import { forEachItem } from './exit.js';
import { insecureFrom, parseDuration, type GlobalArgs } from './global.js';
import { FORMAT_FLAG, FULL_FLAG, LEGEND_FLAG, podJson, podListText, printAs, statsJson, statsText, statusText } from './output.js';
import type { ParsedPodArgs } from './podargs.js';
import { RUN_PREPARED_FLAGS, startPrepared } from './run-prepared.js';

function podsRoot(globals: GlobalArgs): string {
  return new StorePaths(globals.dir).podsDir;
}

/** `--uuid-file=F` or a UUID (prefix) argument. */
function uuidArg(a: { uuid?: string; 'uuid-file'?: string }): string {
  if (a['uuid-file']) {
    try {
      return fs.readFileSync(a['uuid-file'], 'utf8').trim();
    } catch (e) {
      throw new TspodError(ErrorCode.BadInput, `--uuid-file ${JSON.stringify(a['uuid-file'])} cannot be read: ${(e as NodeJS.ErrnoException).code}`);
    }
  }
  if (a.uuid === undefined) throw new TspodError(ErrorCode.BadInput, 'UUID cannot be empty', { hint: 'give a pod UUID or --uuid-file' });
  return a.uuid;
}

/** The UUIDs of stop and rm: the positionals, or the one in --uuid-file. */
function uuidsArg(a: { uuids: string[]; 'uuid-file'?: string }): string[] {
  const uuids = a['uuid-file'] ? [uuidArg(a)] : a.uuids;
  if (!uuids.length) throw new TspodError(ErrorCode.BadInput, 'UUID cannot be empty', { hint: 'give pod UUIDs or --uuid-file' });
  return uuids;
}

const UUID_FILE = { 'uuid-file': { kind: 'value', describe: 'read the pod UUID from this file' } } as const;
const UUID = { uuid: { kind: 'value' } } as const;
const UUIDS = { uuids: { kind: 'list' } } as const;

/**
 * rkt's `--wait` is a flag whose value is optional (`--wait`, `--wait=true`,
 * `--wait=10s`): a bare `--wait` never takes the next word, which yargs would
 * read as its value. Returns the wait in ms (Infinity: until it exits) and the
 * UUID argument as rkt reads them.
 */
export function splitWait(a: { uuid?: string; wait?: string }, argv: readonly string[]): { waitMs: number; uuid?: string } {
  let { wait, uuid } = a;
  if (wait !== undefined && wait !== '' && !argv.some((t) => t.startsWith('--wait='))) {
    // `--wait X`: X is the UUID (or a stray word when a UUID was given too).
    if (uuid !== undefined) throw new TspodError(ErrorCode.Usage, `unexpected argument ${JSON.stringify(wait)}`, { hint: 'write --wait=DURATION for a duration' });
    [wait, uuid] = ['true', wait];
  }
  const waitMs = wait === undefined || wait === 'false' ? 0 : wait === '' || wait === 'true' ? Infinity : parseDuration(wait, 'wait');
  return { waitMs, uuid };
}

const POD_USAGE = (cmd: string) => `Usage: tspod ${cmd} [pod flags] IMAGE [app flags] [-- args... ---] [IMAGE [app flags] ...]

Pod flags:
  --volume NAME,kind=host,source=PATH[,readOnly=bool][,recursive=bool]
  --volume NAME,kind=empty[,mode=0755][,uid=N][,gid=N][,readOnly=bool]
  --mount volume=NAME,target=PATH   (before any image: for every app)
  --inherit-env  --set-env NAME=VALUE  --set-env-file FILE
  --hostname NAME  --interactive  --ipc auto|private|parent  --no-overlay
  --net default|default-restricted|host|none|NAME[:CNI_ARGS],...   (NAME: a config in <local-config>/net.d)
  --mds-register   (run: register with tspod metadata-service; AC_METADATA_URL in the apps)
  --private-users
  --port NAME:[HOSTIP:]HOSTPORT   (forward a host port to the app port NAME)
  --sysctl NAME=VALUE   (namespaced sysctls only)
  --dns IP[,IP]|host|none  --dns-search DOMAIN  --dns-opt OPT  --dns-domain DOMAIN
  --hosts-entry IP=NAME[,NAME]|host
  --pod-manifest FILE  --pull-policy new|update|never  --uuid-file-save FILE
  --stage1-path FILE  --stage1-name NAME  --stage1-hash ID${cmd === 'prepare' ? '\n  --quiet' : ''}
App flags (after the image they apply to):
  --exec PATH  --name NAME  --user UID|NAME|PATH  --group GID|NAME|PATH
  --supplementary-gids N,N  --working-dir DIR  --readonly-rootfs
  --mount volume=NAME,target=PATH  --environment NAME=VALUE  --annotation NAME=VALUE
  --device HOSTPATH[:PODPATH[:rw|rwm]]
`;

/** prepare and run: their arguments are read by cmd/podargs.ts. */
export async function prepareOrRun(cmd: 'prepare' | 'run', { spec, help }: ParsedPodArgs, globals: GlobalArgs): Promise<number> {
  if (help) {
    process.stdout.write(POD_USAGE(cmd));
    return 0;
  }
  requireRoot(cmd);
  const insecure = insecureFrom(globals);
  checkBeforePrepare(cmd, spec, globals);
  const { pod } = await withStore(globals.dir, (store) => preparePod(store, spec, { insecure, keepLockedForRun: cmd === 'run' }));
  if (cmd === 'prepare') {
    process.stdout.write(`${pod.uuid}\n`);
    return 0;
  }
  if (spec.mdsRegister) registerOrDelete(pod, globals.debug, { out: () => undefined, err: (l) => process.stderr.write(`${l}\n`) });
  return runJustPrepared(pod, { ...spec.runtime, debug: globals.debug, insecure, localConfig: globals.localConfig });
}

/** What prepare and run refuse before anything is fetched or prepared. */
function checkBeforePrepare(cmd: 'prepare' | 'run', spec: ParsedPodArgs['spec'], globals: GlobalArgs): void {
  if (spec.mdsRegister) {
    checkMdsNet(spec.runtime.net);
    checkMetadataService();
  }
  if (cmd === 'run') checkNetworksExist(spec.runtime.net, globals.localConfig);
}

/** run-prepared when the fast path (cmd/run-prepared.ts) left it to yargs: --uuid-file, --help. */
const runPreparedCommand = command({
  name: 'run-prepared',
  describe: 'run a prepared pod',
  positionals: UUID,
  flags: RUN_PREPARED_FLAGS,
  run: (a, g) => startPrepared(uuidArg(a), a, g),
});

const stopCommand = command({
  name: 'stop',
  describe: 'stop running pods',
  positionals: UUIDS,
  flags: { force: { kind: 'bool', default: false, describe: 'kill the pod at once (SIGKILL)' }, ...UUID_FILE },
  run: async (a, g) => {
    requireRoot('stop');
    await forEachItem(uuidsArg(a), g.debug, (u) => {
      const r = stopPod(podsRoot(g), u, a.force);
      // rkt prints both on stdout: an already stopped pod is not an error.
      process.stdout.write(r.outcome === 'stopped' ? `"${r.uuid}"\n` : `pod "${r.uuid}" is already stopped\n`);
    });
  },
});

/** A pod's status, read with the pod open. */
function readStatus(pods: PodsDir, uuid: string): PodStatus {
  const pod = pods.open(uuid);
  if (!pod) throw new TspodError(ErrorCode.NotFound, `pod "${uuid}" no longer exists`);
  try {
    return podStatus(pod);
  } finally {
    pod.close();
  }
}

const statusCommand = command({
  name: 'status',
  describe: "print a pod's state",
  positionals: UUID,
  flags: { wait: { kind: 'value', describe: 'wait until the pod has exited (--wait, or --wait=DURATION such as 10s)' }, format: FORMAT_FLAG, ...UUID_FILE },
  run: async (a, g) => {
    const pods = new PodsDir(podsRoot(g));
    const { waitMs, uuid: given } = splitWait(a, process.argv);
    const uuid = pods.resolve(uuidArg({ uuid: given, 'uuid-file': a['uuid-file'] }));
    const deadline = Date.now() + waitMs;
    let status = readStatus(pods, uuid);
    while (waitMs && !status.exited && Date.now() < deadline) {
      await sleep(100);
      status = readStatus(pods, uuid);
    }
    if (waitMs && !status.exited) throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" did not exit within ${a.wait}`);
    printAs(a.format, () => podJson(status), () => statusText(status));
  },
});

const listCommand = command({
  name: 'list',
  describe: 'list pods',
  flags: { full: { ...FULL_FLAG, describe: 'full UUIDs and image IDs, exact times' }, legend: LEGEND_FLAG, format: FORMAT_FLAG },
  run: (a, g) => {
    const pods = new PodsDir(podsRoot(g));
    const statuses: PodStatus[] = [];
    for (const uuid of pods.allUuids()) {
      const pod = pods.open(uuid);
      if (!pod) continue;
      try {
        statuses.push(podStatus(pod));
      } finally {
        pod.close();
      }
    }
    statuses.sort((x, y) => (x.createdAt ?? 0) - (y.createdAt ?? 0));
    printAs(a.format, () => statuses.map(podJson), () => podListText(statuses, a.full, a.legend));
  },
});

const catManifestCommand = command({
  name: 'cat-manifest',
  describe: "print a pod's manifest",
  positionals: UUID,
  flags: { 'pretty-print': { kind: 'bool', default: true }, ...UUID_FILE },
  run: (a, g) => {
    const pods = new PodsDir(podsRoot(g));
    const uuid = pods.resolve(uuidArg(a));
    const pod = pods.open(uuid);
    if (!pod) throw new TspodError(ErrorCode.NotFound, `pod "${uuid}" no longer exists`);
    try {
      const m = readManifest(pod);
      if (!m) throw new TspodError(ErrorCode.NotFound, `pod "${uuid}" has no readable manifest`);
      printAs(a['pretty-print'] ? 'json-pretty' : 'json', () => m, () => '');
    } finally {
      pod.close();
    }
  },
});

const stdio = {
  out: (l: string) => process.stdout.write(`${l}\n`),
  err: (l: string) => process.stderr.write(`tspod: ${l}\n`),
};

const rmCommand = command({
  name: 'rm',
  describe: 'remove pods (any state but running)',
  positionals: UUIDS,
  flags: UUID_FILE,
  run: async (a, g) => {
    requireRoot('rm');
    await forEachItem(uuidsArg(a), g.debug, (u) => removePod(podsRoot(g), u, g.debug, stdio));
  },
});

const gcCommand = command({
  name: 'gc',
  describe: 'garbage-collect exited and aborted pods',
  flags: {
    'grace-period': { kind: 'value', default: '30m', describe: 'keep exited pods this long after they were marked' },
    'expire-prepared': { kind: 'value', default: '24h', describe: 'remove prepared pods older than this' },
    'mark-only': { kind: 'bool', default: false, describe: 'only move pods to garbage; delete nothing' },
  },
  run: (a, g) => {
    requireRoot('gc');
    const gracePeriodMs = parseDuration(a['grace-period'], 'grace-period');
    const expirePreparedMs = parseDuration(a['expire-prepared'], 'expire-prepared');
    gcPods(podsRoot(g), { gracePeriodMs, expirePreparedMs, markOnly: a['mark-only'], debug: g.debug }, stdio);
    if (!a['mark-only']) gcHostNetworks(stdio);
  },
});

const exportCommand = command({
  name: 'export',
  describe: "write an exited pod's app as an ACI (tspod export [--app=NAME] UUID|--uuid-file=F OUT.aci)",
  positionals: { uuid: { kind: 'value' }, output: { kind: 'value' } },
  flags: { app: { kind: 'value' }, overwrite: { kind: 'bool', default: false }, ...UUID_FILE },
  run: async (a, g) => {
    // With --uuid-file the one positional is the output file.
    const [uuidGiven, output] = a['uuid-file'] ? [undefined, a.output ?? a.uuid] : [a.uuid, a.output];
    if (a['uuid-file'] && a.output !== undefined) throw new TspodError(ErrorCode.Usage, 'give either a UUID or --uuid-file, not both', { hint: 'usage: tspod export [--app=NAME] UUID OUT.aci' });
    const uuid = uuidArg({ uuid: uuidGiven, 'uuid-file': a['uuid-file'] });
    if (output === undefined) throw new TspodError(ErrorCode.Usage, 'the output file is missing', { hint: 'usage: tspod export [--app=NAME] UUID OUT.aci' });
    await withStore(g.dir, (store) => exportPod(store, podsRoot(g), uuid, a.app, output, a.overwrite));
  },
});

const statsCommand = command({
  name: 'stats',
  describe: "print a running pod's resource use: per app CPU time, memory, pids; the pod's network counters",
  positionals: UUID,
  flags: { format: FORMAT_FLAG, ...UUID_FILE },
  run: (a, g) => {
    requireRoot('stats');
    const s = podStats(podsRoot(g), uuidArg(a));
    printAs(a.format, () => statsJson(s), () => statsText(s));
  },
});

function pauseCommand(paused: boolean): Command {
  return command({
    name: paused ? 'pause' : 'resume',
    describe: paused ? "freeze a running pod's apps (cgroup freezer)" : 'thaw a paused pod',
    positionals: UUID,
    flags: UUID_FILE,
    run: async (a, g) => {
      requireRoot(paused ? 'pause' : 'resume');
      process.stdout.write(`"${await setPodPaused(podsRoot(g), uuidArg(a), paused)}"\n`);
    },
  });
}

export const podCommands: Command[] = [
  statsCommand,
  pauseCommand(true),
  pauseCommand(false),
  runPreparedCommand,
  stopCommand,
  statusCommand,
  listCommand,
  catManifestCommand,
  rmCommand,
  gcCommand,
  exportCommand,
];
