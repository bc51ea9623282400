// Pod commands: prepare, run, run-prepared, enter, stop, status, list,
// cat-manifest, rm, gc, export (rkt's outputs).
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Argv, CommandModule } from 'yargs';
import { TspodError, ErrorCode } from '../native/errors.js';
import { requireRoot } from '../native/libc.js';
import { configureLogging } from '../native/log.js';
import { exportPod } from '../stage0/export.js';
import { deletePod, gcPods, removePod } from '../stage0/gc.js';
import { checkMetadataService, registerPod } from '../stage0/mds/client.js';
import { podStatus, readManifest, type PodStatus } from '../stage0/inspect.js';
import { PodsDir } from '../stage0/pods.js';
import { preparePod } from '../stage0/prepare.js';
import { checkMdsNet, runJustPrepared, runPrepared } from '../stage0/run.js';
import { stopPod } from '../stage0/stop.js';
import { podStats, setPodPaused, type PodStats } from '../stage0/resources.js';
import { parseInsecureOptions } from '../store/insecure.js';
import { StorePaths } from '../store/paths.js';
import { withStore } from '../store/store.js';
import { insecureFrom, type GlobalArgs } from './global.js';
import { formatOption, fullTime, humanTime, parseDuration, printJson, shortId, tabulate, type OutputFormat } from './output.js';
import { parsePodArgs } from './podargs.js';
import { DEFAULT_DIR } from '../store/paths.js';
import { networksJson, networksText } from '../stage1/contract/networks.js';
import { checkNetworksExist } from '../stage0/spec.js';

type SetExit = (code: number) => void;
type Args<T> = GlobalArgs & T;

function podsRoot(dir: string): string {
  return new StorePaths(dir).podsDir;
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
  return String(a.uuid);
}

const uuidFileOption = { 'uuid-file': { type: 'string' as const, describe: 'read the pod UUID from this file' } };

/** UUID positionals stay strings (yargs would read `0123` or `1e5` as numbers). */
function uuidPositional<T>(y: Argv<T>, name: 'uuid' | 'uuids'): Argv<T> {
  return y.positional(name, name === 'uuids' ? { type: 'string', array: true } : { type: 'string' }) as unknown as Argv<T>;
}

/**
 * rkt's `--wait` is a flag whose value is optional (`--wait`, `--wait=true`,
 * `--wait=10s`): a bare `--wait` never takes the next word, which yargs would
 * read as its value. Returns the wait value and the UUID argument as rkt reads them.
 */
function splitWait(a: { uuid?: string; wait?: string }, argv: readonly string[]): { wait?: string; uuid?: string } {
  if (a.wait === undefined || a.wait === '' || argv.some((t) => t.startsWith('--wait='))) return { wait: a.wait, uuid: a.uuid };
  // `--wait X`: X is the UUID (or a stray word when a UUID was given too).
  if (a.uuid !== undefined) throw new TspodError(ErrorCode.Usage, `unexpected argument ${JSON.stringify(a.wait)}`, { hint: 'write --wait=DURATION for a duration' });
  return { wait: 'true', uuid: String(a.wait) };
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

/** prepare and run parse their own arguments (see cmd/podargs.ts). */
export async function prepareOrRun(command: 'prepare' | 'run', tokens: string[], inherited: GlobalArgs): Promise<number> {
  const { global, spec, help } = parsePodArgs(tokens, command);
  if (help) {
    process.stdout.write(POD_USAGE(command));
    return 0;
  }
  const dir = global.dir ?? inherited.dir ?? DEFAULT_DIR;
  const debug = global.debug ?? inherited.debug ?? false;
  configureLogging({ debug });
  requireRoot(command);
  const insecure = parseInsecureOptions(global.insecureOptions ?? inherited['insecure-options']);
  if (spec.mdsRegister) {
    // Fail before anything is fetched or prepared.
    checkMdsNet(spec.runtime.net);
    checkMetadataService();
  }
  if (command === 'run') checkNetworksExist(spec.runtime.net, global.localConfig ?? inherited['local-config']);
  const prepared = await withStore(dir, (store) => preparePod(store, spec, { insecure, keepLockedForRun: command === 'run' }));
  if (command === 'prepare') {
    process.stdout.write(`${prepared.pod.uuid}\n`);
    return 0;
  }
  if (spec.mdsRegister) {
    try {
      registerPod(prepared.pod);
    } catch (e) {
      // The service went away since the check: no pod is left behind.
      prepared.pod.moveTo('garbage');
      deletePod(prepared.pod.pods, prepared.pod, false, debug, { out: () => undefined, err: (l) => process.stderr.write(`${l}\n`) });
      throw e;
    }
  }
  return runJustPrepared(prepared.pod, { ...spec.runtime, debug, insecure, localConfig: global.localConfig ?? inherited['local-config'] });
}

type RunPreparedArgs = Args<{ uuid?: string; net?: string; hostname?: string; interactive?: boolean; ipc?: string; 'mds-register'?: boolean; 'uuid-file'?: string; dns?: string | string[]; 'dns-search'?: string | string[]; 'dns-opt'?: string | string[]; 'dns-domain'?: string; 'hosts-entry'?: string | string[] }>;

function runPreparedCommand(): CommandModule<GlobalArgs, RunPreparedArgs> {
  return {
    command: 'run-prepared [uuid]',
    describe: 'run a prepared pod',
    builder: (y: Argv<GlobalArgs>) =>
      uuidPositional(y, 'uuid').options({
        net: { type: 'string', describe: 'default, default-restricted, host, none or NAME[:CNI_ARGS], comma-separated' },
        hostname: { type: 'string', describe: 'the pod hostname (default tspod-<uuid>)' },
        interactive: { type: 'boolean', describe: 'pass the terminal through to the one app' },
        ipc: { type: 'string', describe: 'auto|private (an IPC namespace of its own) or parent (the host\'s)' },
        'mds-register': { type: 'boolean', describe: 'register the pod with the metadata service (tspod metadata-service)' },
        dns: { type: 'string', describe: 'name servers (IP[,IP], repeatable), or host, or none: replaces what prepare stored' },
        'dns-search': { type: 'string', describe: 'search domains (repeatable)' },
        'dns-opt': { type: 'string', describe: 'resolver options (repeatable)' },
        'dns-domain': { type: 'string', describe: 'the resolv.conf domain' },
        'hosts-entry': { type: 'string', describe: 'IP=NAME[,NAME] (repeatable), or host: replaces what prepare stored' },
        ...uuidFileOption,
      }) as unknown as Argv<RunPreparedArgs>,
    handler: (a) => {
      requireRoot('run-prepared');
      const list = (v: string | string[] | undefined) => (v === undefined ? [] : ([] as string[]).concat(v));
      runPrepared(podsRoot(a.dir), uuidArg(a), {
        net: a.net,
        hostname: a.hostname,
        interactive: a.interactive,
        ipc: a.ipc,
        debug: a.debug,
        insecure: insecureFrom(a),
        localConfig: a['local-config'],
        mdsRegister: a['mds-register'],
        dns: { dns: list(a.dns), search: list(a['dns-search']), options: list(a['dns-opt']), domain: a['dns-domain'], hostsEntries: list(a['hosts-entry']) },
      });
    },
  };
}

function stopCommand(setExit: SetExit): CommandModule<GlobalArgs, Args<{ uuids?: string[]; force: boolean; 'uuid-file'?: string }>> {
  return {
    command: 'stop [uuids..]',
    describe: 'stop running pods',
    builder: (y: Argv<GlobalArgs>) =>
      uuidPositional(y, 'uuids').options({ force: { type: 'boolean', default: false, describe: 'kill the pod at once (SIGKILL)' }, ...uuidFileOption }) as unknown as Argv<
        Args<{ uuids?: string[]; force: boolean; 'uuid-file'?: string }>
      >,
    handler: (a) => {
      requireRoot('stop');
      const uuids = a['uuid-file'] ? [uuidArg(a)] : (a.uuids ?? []).map(String);
      if (!uuids.length) throw new TspodError(ErrorCode.BadInput, 'UUID cannot be empty', { hint: 'give pod UUIDs or --uuid-file' });
      for (const u of uuids) {
        try {
          const r = stopPod(podsRoot(a.dir), u, a.force);
          // rkt prints both on stdout: an already stopped pod is not an error.
          if (r.outcome === 'stopped') process.stdout.write(`"${r.uuid}"\n`);
          else process.stdout.write(`pod "${r.uuid}" is already stopped\n`);
        } catch (e) {
          process.stderr.write(`tspod: ${e instanceof TspodError ? e.line : String(e)}\n`);
          setExit(254);
        }
      }
    },
  };
}

type StatusArgs = Args<{ uuid?: string; wait?: string; format: string; 'uuid-file'?: string }>;

function statusCommand(): CommandModule<GlobalArgs, StatusArgs> {
  return {
    command: 'status [uuid]',
    describe: "print a pod's state",
    builder: (y: Argv<GlobalArgs>) =>
      uuidPositional(y, 'uuid').options({
        wait: { type: 'string', describe: 'wait until the pod has exited (--wait, or --wait=DURATION such as 10s)' },
        format: formatOption,
        ...uuidFileOption,
      }) as unknown as Argv<StatusArgs>,
    handler: async (a) => {
      const pods = new PodsDir(podsRoot(a.dir));
      const w = splitWait(a, process.argv);
      const uuid = pods.resolve(uuidArg({ uuid: w.uuid, 'uuid-file': a['uuid-file'] }));
      const waitArg = w.wait;
      const waitMs = waitArg === undefined || waitArg === 'false' ? 0 : waitArg === '' || waitArg === 'true' ? Infinity : parseDuration(waitArg, 'wait');
      const deadline = Date.now() + waitMs;
      let status: PodStatus;
      for (;;) {
        const pod = pods.open(uuid);
        if (!pod) throw new TspodError(ErrorCode.NotFound, `pod "${uuid}" no longer exists`);
        try {
          status = podStatus(pod);
        } finally {
          pod.close();
        }
        if (!waitMs || status.exited || Date.now() >= deadline) break;
        await sleep(100);
      }
      if (waitMs && !status.exited) throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" did not exit within ${waitArg}`);
      const format = a.format as OutputFormat;
      if (format !== 'tabbed') {
        printJson(podJson(status), format);
        return;
      }
      const lines = [`state=${status.paused ? 'paused' : status.state}`];
      if (status.createdAt !== undefined) lines.push(`created=${fullTime(status.createdAt)}`);
      if (status.startedAt !== undefined) lines.push(`started=${fullTime(status.startedAt)}`);
      if (status.state === 'running' || status.exited) lines.push(`networks=${networksText(status.networks)}`);
      if (status.pid !== undefined) lines.push(`pid=${status.pid}`);
      lines.push(`exited=${status.exited}`);
      if (status.state !== 'running') for (const app of status.apps) if (app.exitCode !== undefined) lines.push(`app-${app.name}=${app.exitCode}`);
      const oom = status.apps.filter((app) => app.oomKilled).map((app) => app.name);
      if (oom.length) lines.push(`oom-killed=${oom.join(',')}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    },
  };
}

/** rkt's JSON shape for a pod (api/v1). */
function podJson(s: PodStatus): unknown {
  const sec = (ms?: number) => (ms === undefined ? 0 : Math.floor(ms / 1000));
  const ns = (ms?: number) => (ms === undefined ? 0 : Math.round(ms * 1e6));
  return {
    name: s.uuid,
    state: s.paused ? 'paused' : s.state,
    networks: networksJson(s.networks),
    app_names: s.apps.map((a) => a.name),
    apps: s.apps.map((a) => ({
      name: a.name,
      state: s.state === 'running' ? (s.paused ? 'paused' : 'running') : a.exitCode !== undefined ? 'exited' : s.exited ? 'unknown' : 'created',
      created_at: ns(s.createdAt),
      started_at: ns(a.startedAt),
      finished_at: a.exitCode !== undefined ? ns(a.finishedAt) : 0,
      exit_code: a.exitCode ?? 0,
      ...(a.oomKilled ? { oom_killed: true, reason: 'oom-killed' } : {}),
      // beyond rkt's shape: the app's cgroup limits (null: none)
      ...(a.limits
        ? { limits: { memory_bytes: a.limits.memory ?? null, cpu_millis: a.limits.cpuMillis ?? null, cpu_shares: a.limits.cpuShares ?? null, pids: a.limits.pids ?? null } }
        : {}),
      image_id: a.imageId,
      mounts: [],
      user_annotations: {},
      user_labels: {},
      // beyond rkt's shape, once the pod has started: the seccomp filter the app got and
      // its device cgroup's allow list (null: none)
      ...(a.security
        ? {
            seccomp: a.security.seccomp ? { mode: a.security.seccomp.mode, errno: a.security.seccomp.errno, syscalls: a.security.seccomp.syscalls } : null,
            device_rules: a.security.devices ?? null,
          }
        : {}),
    })),
    created_at: sec(s.createdAt),
    started_at: sec(s.startedAt),
    user_annotations: s.manifest?.userAnnotations ?? {},
    user_labels: s.manifest?.userLabels ?? {},
    ...(s.ipc ? { ipc: s.ipc } : {}),
    ...(s.userNamespace ? { user_namespace: { uid_map: s.userNamespace.uidMap, gid_map: s.userNamespace.gidMap } } : {}),
    // beyond rkt's shape: --dns*, --hosts-entry, and where the apps' resolv.conf came from once started
    ...(s.dns
      ? {
          dns: {
            resolv_conf: s.dns.resolv,
            nameservers: s.dns.nameservers,
            search: s.dns.search,
            options: s.dns.options,
            domain: s.dns.domain,
            hosts: s.dns.hosts,
            hosts_entries: s.dns.hostsEntries.map((h) => ({ ip: h.ip, hostnames: h.names })),
            ...(s.resolvConfFrom ? { resolv_conf_from: s.resolvConfFrom } : {}),
          },
        }
      : {}),
  };
}

type ListArgs = Args<{ full: boolean; legend: boolean; format: string }>;

function listCommand(): CommandModule<GlobalArgs, ListArgs> {
  return {
    command: 'list',
    describe: 'list pods',
    builder: (y: Argv<GlobalArgs>) =>
      y.options({
        full: { type: 'boolean', default: false, describe: 'full UUIDs and image IDs, exact times' },
        // --no-legend: yargs reads --no-X as X=false, so the option is `legend`.
        legend: { type: 'boolean', default: true, describe: 'column headers (--no-legend: none)' },
        format: formatOption,
      }) as unknown as Argv<ListArgs>,
    handler: (a) => {
      const pods = new PodsDir(podsRoot(a.dir));
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
      const format = a.format as OutputFormat;
      if (format !== 'tabbed') {
        printJson(statuses.map(podJson), format);
        return;
      }
      const time = (ms?: number) => (ms === undefined ? '-' : a.full ? fullTime(ms) : humanTime(ms));
      const head = ['UUID', 'APP', 'IMAGE NAME', ...(a.full ? ['IMAGE ID'] : []), 'STATE', 'CREATED', 'STARTED', 'NETWORKS'];
      const rows: string[][] = a.legend ? [head] : [];
      for (const s of statuses) {
        const uuid = a.full ? s.uuid : s.uuid.slice(0, 8);
        const podCells = [s.paused ? 'paused' : s.state, time(s.createdAt), time(s.startedAt), networksText(s.networks)];
        const apps = s.apps.length ? s.apps : [{ name: '-', imageName: '-', imageId: '-' }];
        apps.forEach((app, i) => {
          const imageId = a.full ? [app.imageId === '-' ? '-' : shortId(app.imageId, 12)] : [];
          rows.push(
            i === 0
              ? [uuid, app.name, app.imageName ?? '-', ...imageId, ...podCells]
              : ['', app.name, app.imageName ?? '-', ...imageId, '', '', '', ''],
          );
        });
      }
      process.stdout.write(tabulate(rows));
    },
  };
}

function catManifestCommand(): CommandModule<GlobalArgs, Args<{ uuid?: string; 'pretty-print': boolean; 'uuid-file'?: string }>> {
  return {
    command: 'cat-manifest [uuid]',
    describe: "print a pod's manifest",
    builder: (y: Argv<GlobalArgs>) =>
      uuidPositional(y, 'uuid').options({ 'pretty-print': { type: 'boolean', default: true }, ...uuidFileOption }) as unknown as Argv<
        Args<{ uuid?: string; 'pretty-print': boolean; 'uuid-file'?: string }>
      >,
    handler: (a) => {
      const pods = new PodsDir(podsRoot(a.dir));
      const uuid = pods.resolve(uuidArg(a));
      const pod = pods.open(uuid);
      if (!pod) throw new TspodError(ErrorCode.NotFound, `pod "${uuid}" no longer exists`);
      try {
        const m = readManifest(pod);
        if (!m) throw new TspodError(ErrorCode.NotFound, `pod "${uuid}" has no readable manifest`);
        process.stdout.write(`${a['pretty-print'] ? JSON.stringify(m, null, '\t') : JSON.stringify(m)}\n`);
      } finally {
        pod.close();
      }
    },
  };
}

function rmCommand(setExit: SetExit): CommandModule<GlobalArgs, Args<{ uuids?: string[]; 'uuid-file'?: string }>> {
  return {
    command: 'rm [uuids..]',
    describe: 'remove pods (any state but running)',
    builder: (y: Argv<GlobalArgs>) => uuidPositional(y, 'uuids').options(uuidFileOption) as unknown as Argv<Args<{ uuids?: string[]; 'uuid-file'?: string }>>,
    handler: (a) => {
      requireRoot('rm');
      const uuids = a['uuid-file'] ? [uuidArg(a)] : (a.uuids ?? []).map(String);
      if (!uuids.length) throw new TspodError(ErrorCode.BadInput, 'UUID cannot be empty', { hint: 'give pod UUIDs or --uuid-file' });
      for (const u of uuids) {
        try {
          removePod(podsRoot(a.dir), u, a.debug, stdio);
        } catch (e) {
          process.stderr.write(`tspod: ${e instanceof TspodError ? e.line : String(e)}\n`);
          setExit(254);
        }
      }
    },
  };
}

const stdio = {
  out: (l: string) => process.stdout.write(`${l}\n`),
  err: (l: string) => process.stderr.write(`tspod: ${l}\n`),
};

type GcArgs = Args<{ 'grace-period': string; 'expire-prepared': string; 'mark-only': boolean }>;

function gcCommand(): CommandModule<GlobalArgs, GcArgs> {
  return {
    command: 'gc',
    describe: 'garbage-collect exited and aborted pods',
    builder: (y: Argv<GlobalArgs>) =>
      y.options({
        'grace-period': { type: 'string', default: '30m', describe: 'keep exited pods this long after they were marked' },
        'expire-prepared': { type: 'string', default: '24h', describe: 'remove prepared pods older than this' },
        'mark-only': { type: 'boolean', default: false, describe: 'only move pods to garbage; delete nothing' },
      }) as unknown as Argv<GcArgs>,
    handler: (a) => {
      requireRoot('gc');
      gcPods(
        podsRoot(a.dir),
        {
          gracePeriodMs: parseDuration(a['grace-period'], 'grace-period'),
          expirePreparedMs: parseDuration(a['expire-prepared'], 'expire-prepared'),
          markOnly: a['mark-only'],
          debug: a.debug,
        },
        stdio,
      );
    },
  };
}

type ExportArgs = Args<{ uuid?: string; output?: string; app?: string; overwrite: boolean; 'uuid-file'?: string }>;

function exportCommand(): CommandModule<GlobalArgs, ExportArgs> {
  return {
    command: 'export [uuid] [output]',
    describe: "write an exited pod's app as an ACI (tspod export [--app=NAME] UUID|--uuid-file=F OUT.aci)",
    builder: (y: Argv<GlobalArgs>) =>
      uuidPositional(y, 'uuid')
        .positional('output', { type: 'string' })
        .options({ app: { type: 'string' }, overwrite: { type: 'boolean', default: false }, ...uuidFileOption }) as unknown as Argv<ExportArgs>,
    handler: async (a) => {
      // With --uuid-file the one positional is the output file.
      const [uuidGiven, output] = a['uuid-file'] ? [undefined, a.output ?? a.uuid] : [a.uuid, a.output];
      if (a['uuid-file'] && a.output !== undefined) throw new TspodError(ErrorCode.Usage, 'give either a UUID or --uuid-file, not both', { hint: 'usage: tspod export [--app=NAME] UUID OUT.aci' });
      const uuid = uuidArg({ uuid: uuidGiven, 'uuid-file': a['uuid-file'] });
      if (output === undefined) throw new TspodError(ErrorCode.Usage, 'the output file is missing', { hint: 'usage: tspod export [--app=NAME] UUID OUT.aci' });
      await withStore(a.dir, (store) => exportPod(store, podsRoot(a.dir), uuid, a.app, String(output), a.overwrite));
    },
  };
}

type StatsArgs = Args<{ uuid?: string; format: string; 'uuid-file'?: string }>;

/** Bytes as podman shows them: 1.5MiB. */
function iec(n?: number): string {
  if (n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v}${units[i]}`;
}

function statsCommand(): CommandModule<GlobalArgs, StatsArgs> {
  return {
    command: 'stats [uuid]',
    describe: "print a running pod's resource use: per app CPU time, memory, pids; the pod's network counters",
    builder: (y: Argv<GlobalArgs>) => uuidPositional(y, 'uuid').options({ format: formatOption, ...uuidFileOption }) as unknown as Argv<StatsArgs>,
    handler: (a) => {
      requireRoot('stats');
      const s: PodStats = podStats(podsRoot(a.dir), uuidArg(a));
      const format = a.format as OutputFormat;
      if (format !== 'tabbed') {
        printJson(
          {
            uuid: s.uuid,
            apps: s.apps.map((x) => ({
              name: x.name,
              cpu_ns: x.cpuNs ?? null,
              memory_bytes: x.memoryBytes ?? null,
              memory_peak_bytes: x.memoryPeakBytes ?? null,
              memory_limit_bytes: x.memoryLimitBytes ?? null,
              pids: x.pids ?? null,
              pids_limit: x.pidsLimit ?? null,
              oom_kills: x.oomKills ?? null,
            })),
            network: s.network,
            interfaces: s.interfaces.map((i) => ({ name: i.name, rx_bytes: i.rxBytes, tx_bytes: i.txBytes, rx_packets: i.rxPackets, tx_packets: i.txPackets })),
          },
          format,
        );
        return;
      }
      const rows = [['APP', 'CPU TIME', 'MEM', 'MEM PEAK', 'MEM LIMIT', 'PIDS', 'PIDS LIMIT']];
      for (const x of s.apps) {
        rows.push([
          x.name,
          x.cpuNs === undefined ? '-' : `${(x.cpuNs / 1e9).toFixed(3)}s`,
          iec(x.memoryBytes),
          iec(x.memoryPeakBytes),
          x.memoryLimitBytes === undefined ? '-' : iec(x.memoryLimitBytes),
          x.pids === undefined ? '-' : String(x.pids),
          x.pidsLimit === undefined ? '-' : String(x.pidsLimit),
        ]);
      }
      let out = tabulate(rows);
      const net = [[s.network === 'host' ? 'INTERFACE (host network: the host\'s counters)' : 'INTERFACE', 'RX BYTES', 'TX BYTES', 'RX PACKETS', 'TX PACKETS']];
      for (const i of s.interfaces) net.push([i.name, String(i.rxBytes), String(i.txBytes), String(i.rxPackets), String(i.txPackets)]);
      out += `\n${tabulate(net)}`;
      process.stdout.write(out);
    },
  };
}

function pauseCommand(paused: boolean): CommandModule<GlobalArgs, Args<{ uuid?: string; 'uuid-file'?: string }>> {
  return {
    command: `${paused ? 'pause' : 'resume'} [uuid]`,
    describe: paused ? "freeze a running pod's apps (cgroup freezer)" : 'thaw a paused pod',
    builder: (y: Argv<GlobalArgs>) => uuidPositional(y, 'uuid').options({ ...uuidFileOption }) as unknown as Argv<Args<{ uuid?: string; 'uuid-file'?: string }>>,
    handler: async (a) => {
      requireRoot(paused ? 'pause' : 'resume');
      const uuid = await setPodPaused(podsRoot(a.dir), uuidArg(a), paused);
      process.stdout.write(`"${uuid}"\n`);
    },
  };
}

export function podCommands(setExit: SetExit): CommandModule[] {
  return [
    statsCommand(),
    pauseCommand(true),
    pauseCommand(false),
    runPreparedCommand(),
    stopCommand(setExit),
    statusCommand(),
    listCommand(),
    catManifestCommand(),
    rmCommand(setExit),
    gcCommand(),
    exportCommand(),
  ] as unknown as CommandModule[];
}
