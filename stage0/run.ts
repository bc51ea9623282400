// Starting a pod: stage0 moves it to pods/run (keeping its lock), then execs the
// stage1 init entrypoint with CWD = the pod directory, a scrubbed environment and
// the lock fd inherited as TSPOD_LOCK_FD. Nothing of tspod's Node process stays.
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode } from '../native/errors.js';
import { sys } from '../native/sys.js';
import { annotationValue, type AppcImageManifest } from '../stage1/contract/appc.js';
import { DEFAULT_LOCAL_CONFIG, DEFAULT_PATH, POD_FILES, STAGE1_ANNOTATIONS, type PodManifest } from '../stage1/contract/pod.js';
import { PodsDir, type Pod } from './pods.js';
import { checkPortsFree } from './ports.js';
import { dropRegistration, registerPod } from './mds/client.js';
import { checkIpc, checkNet, checkNetworksExist, type RuntimeFlags } from './spec.js';
import { checkStage1Manifest, type Stage1Entrypoint } from './stage1-interface.js';
import { dnsVolumeProblem, givesDns, isDefaultDns, overrideDns, readPodDns, type DnsFlags, type PodDns } from '../stage1/contract/dns.js';

export interface RunOptions extends RuntimeFlags {
  debug: boolean;
  /** --local-config: where named networks' CNI configs are (<dir>/net.d); default /etc/tspod. */
  localConfig?: string;
  /** The run-time parts of --insecure-options (given to run or run-prepared, as in rkt). */
  insecure?: { capabilities: boolean; paths: boolean; seccomp: boolean };
  /** --mds-register: register with the metadata service (stage0/mds/) before stage1 starts. */
  mdsRegister?: boolean;
  /** run-prepared's --dns*, --hosts-entry: replace what prepare stored (the pod file dns). */
  dns?: DnsFlags;
}

/** `run-prepared UUID`: lock the prepared pod, move it to run/, exec stage1. */
export function runPrepared(podsRoot: string, uuidPrefix: string, opts: RunOptions): never {
  checkNet(opts.net);
  checkIpc(opts.ipc);
  const pods = new PodsDir(podsRoot);
  const uuid = pods.resolve(uuidPrefix);
  const pod = pods.open(uuid);
  if (!pod || pod.where !== 'prepared') {
    throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" is not prepared`, { hint: pod ? `it is ${pod.state()}` : undefined });
  }
  if (!pod.tryLock()) throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" is being started by another process`);
  if (pod.refresh() !== 'prepared') throw new TspodError(ErrorCode.Conflict, `pod "${uuid}" is not prepared`);
  checkNetworksExist(opts.net ?? readDefaults(pod.dir).net, opts.localConfig ?? DEFAULT_LOCAL_CONFIG);
  // Refused here, the pod stays prepared (the lock goes with this process).
  checkPortsFree(readManifest(pod.dir), opts.net ?? readDefaults(pod.dir).net);
  const dns = opts.dns && givesDns(opts.dns) ? podDnsOverride(pod.dir, opts.dns) : undefined; // refused: the pod stays prepared, untouched
  const init = stage1Entrypoint(pod.dir, 'init'); // a stage1 this tspod cannot run leaves the pod prepared
  // A failed registration leaves the pod prepared, as it was.
  if (opts.mdsRegister) {
    checkMdsNet(opts.net ?? readDefaults(pod.dir).net);
    registerPod(pod);
  } else {
    dropRegistration(pod);
  }
  if (dns) writePodDns(pod.dir, dns);
  pod.moveTo('run');
  return execStage1(pod, init, opts, 'prepared');
}

/** run-prepared's DNS flags over the prepared pod's settings, checked as at prepare. */
function podDnsOverride(dir: string, flags: DnsFlags): PodDns {
  let dns: PodDns;
  try {
    dns = overrideDns(readPodDns(dir), flags);
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, (e as Error).message);
  }
  const problem = dnsVolumeProblem(readManifest(dir).apps, dns);
  if (problem) throw new TspodError(ErrorCode.BadInput, problem.message, { hint: problem.hint });
  return dns;
}

/** The pod file dns (none when all defaults), replaced atomically. */
function writePodDns(dir: string, dns: PodDns): void {
  const file = path.join(dir, POD_FILES.dns);
  if (isDefaultDns(dns)) {
    fs.rmSync(file, { force: true });
    return;
  }
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(dns));
  fs.renameSync(`${file}.tmp`, file);
}

/** For `run`: the pod was just prepared and is still locked in pods/prepare (and registered, with --mds-register). */
export function runJustPrepared(pod: Pod, opts: RunOptions): never {
  const init = stage1Entrypoint(pod.dir, 'init');
  pod.moveTo('run');
  return execStage1(pod, init, opts, 'garbage');
}

/** --mds-register needs a network from which the pod reaches the service. */
export function checkMdsNet(net: string | undefined): void {
  if (net === 'none') {
    throw new TspodError(ErrorCode.BadInput, '--mds-register: a pod with --net=none cannot reach the metadata service', { hint: 'give it a network, or leave out --mds-register' });
  }
}

/**
 * Execs the stage1 init entrypoint `init` (a host path, stage1Entrypoint) for the
 * pod, now in pods/run. If stage1 refuses to start it, it moves the pod to
 * `refused` (prepared for run-prepared, so that it can be run again; garbage for
 * run, for the next gc to remove, as an aborted prepare): a refused start never
 * leaves a pod in run/ that looks as if it had run.
 */
function execStage1(pod: Pod, init: string, opts: RunOptions, refused: 'prepared' | 'garbage'): never {
  const defaults = readDefaults(pod.dir);
  const flags: RuntimeFlags = {
    net: opts.net ?? defaults.net ?? 'default',
    hostname: opts.hostname ?? defaults.hostname,
    interactive: opts.interactive ?? defaults.interactive ?? false,
    ipc: opts.ipc ?? defaults.ipc,
  };
  const args = [init];
  if (opts.debug) args.push('--debug');
  args.push(`--net=${flags.net}`);
  args.push(`--local-config=${path.resolve(opts.localConfig ?? DEFAULT_LOCAL_CONFIG)}`);
  if (flags.interactive) args.push('--interactive');
  if (flags.hostname) args.push(`--hostname=${flags.hostname}`);
  if (flags.ipc) args.push(`--ipc=${flags.ipc}`);
  if (opts.insecure?.capabilities) args.push('--disable-capabilities-restriction');
  if (opts.insecure?.paths) args.push('--disable-paths');
  if (opts.insecure?.seccomp) args.push('--disable-seccomp');
  args.push(`--refused-to=${pod.pods.podDir(refused, pod.uuid)}`);
  args.push(pod.uuid);
  process.chdir(pod.dir);
  return sys().execve(init, args, stage1Environment({ TSPOD_LOCK_FD: String(pod.fd) }), [pod.fd]);
}

function readManifest(dir: string): PodManifest {
  return JSON.parse(fs.readFileSync(path.join(dir, POD_FILES.manifest), 'utf8')) as PodManifest;
}

function readDefaults(dir: string): RuntimeFlags {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, POD_FILES.runtimeDefaults), 'utf8')) as RuntimeFlags;
  } catch {
    return {};
  }
}

/**
 * The host path of one of the pod's stage1 entrypoints: named by the stage1
 * manifest's annotation, found in the stage1 image's layers (top first).
 */
export function stage1Entrypoint(podDir: string, which: Stage1Entrypoint): string {
  const m = JSON.parse(fs.readFileSync(path.join(podDir, POD_FILES.stage1Manifest), 'utf8')) as AppcImageManifest;
  checkStage1Manifest(m, `the pod's stage1 ${m.name}`);
  const rel = annotationValue(m, STAGE1_ANNOTATIONS[which]);
  if (!rel) throw new TspodError(ErrorCode.Unsupported, `the pod's stage1 has no ${which} entrypoint`);
  const layers = JSON.parse(fs.readFileSync(path.join(podDir, POD_FILES.stage1Layers), 'utf8')) as string[];
  for (const layer of [...layers].reverse()) {
    const p = path.join(layer, rel);
    if (fs.existsSync(p)) return p;
  }
  throw new TspodError(ErrorCode.NotFound, `stage1 entrypoint ${rel} is missing from the store`, { hint: 'fetch the stage1 image again' });
}

/** The environment stage1 gets: nothing of the caller's but PATH and TERM (never NODE_OPTIONS). */
export function stage1Environment(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? DEFAULT_PATH };
  if (process.env.TERM) env.TERM = process.env.TERM;
  return { ...env, ...extra };
}
