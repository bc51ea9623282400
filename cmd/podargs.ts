// rkt's command line for `prepare` and `run`: pod flags, then images, each
// followed by its own app flags and `-- args ---`. Flags after an image bind to
// that image (interspersed flags are off), which yargs cannot express, so these
// two commands parse their arguments here.
import { TspodError, ErrorCode } from '../native/errors.js';
import { imagePathProblem } from '../native/image-fs.js';
import type { PodVolume } from '../stage1/contract/pod.js';
import type { AppSpec, MountSpec, PodSpec } from '../stage0/spec.js';
import type { AppcIsolator } from '../stage1/contract/appc.js';
import { capabilityName, CAPS_REMOVE, CAPS_RETAIN } from '../stage1/contract/capabilities.js';
import { OOM_SCORE_ADJ, parseOomScoreAdj } from '../stage0/isolators.js';
import { seccompFlagIsolator } from '../stage1/contract/seccomp.js';
import { CPU, CPU_SHARES, MEMORY, parseCpu, parseCpuShares, parseMemory, parsePidsLimit, PIDS_LIMIT } from '../stage1/contract/resources.js';
import { defaultGlobals, pullPolicyFromFlags, takeGlobalFlag, type GlobalArgs } from './global.js';
import { matchFlag, parseBool, setFlag, type FlagTable } from './flags.js';
import { deviceProblem, parseDeviceFlag, type DeviceSpec } from '../stage1/contract/devices.js';
import { parsePortFlag, portsNetProblem, type ExposedPort } from '../stage1/contract/ports.js';
import { PORTS_NET_HINT } from '../stage0/ports.js';
import { isDefaultDns, parseDnsFlags, type PodDns } from '../stage1/contract/dns.js';

export const POD_FLAGS = {
  volume: { kind: 'list' },
  'set-env': { kind: 'list' },
  'set-env-file': { kind: 'list' },
  'inherit-env': { kind: 'bool' },
  hostname: { kind: 'value' },
  interactive: { kind: 'bool' },
  'pod-manifest': { kind: 'value' },
  'no-overlay': { kind: 'bool' },
  'private-users': { kind: 'bool' },
  net: { kind: 'list' },
  port: { kind: 'list' },
  ipc: { kind: 'value' },
  sysctl: { kind: 'list' },
  'uuid-file-save': { kind: 'value' },
  'pull-policy': { kind: 'value' },
  'stage1-path': { kind: 'value' },
  'stage1-name': { kind: 'value' },
  'stage1-hash': { kind: 'value' },
  quiet: { kind: 'bool' },
  'mds-register': { kind: 'bool' },
  'no-store': { kind: 'bool' },
  'store-only': { kind: 'bool' },
  dns: { kind: 'list' },
  'dns-search': { kind: 'list' },
  'dns-opt': { kind: 'list' },
  'dns-domain': { kind: 'value' },
  'hosts-entry': { kind: 'list' },
} as const satisfies FlagTable;

export const APP_FLAGS = {
  exec: { kind: 'value' },
  name: { kind: 'value' },
  user: { kind: 'value' },
  group: { kind: 'value' },
  'supplementary-gids': { kind: 'value' },
  'working-dir': { kind: 'value' },
  'readonly-rootfs': { kind: 'bool' },
  mount: { kind: 'list' },
  environment: { kind: 'list' },
  annotation: { kind: 'list' },
  'caps-retain': { kind: 'value' },
  'caps-remove': { kind: 'value' },
  'oom-score-adj': { kind: 'value' },
  seccomp: { kind: 'value' },
  memory: { kind: 'value' },
  cpu: { kind: 'value' },
  'cpu-shares': { kind: 'value' },
  'pids-limit': { kind: 'value' },
  device: { kind: 'list' },
} as const satisfies FlagTable;

/** rkt flags tspod does not implement yet: refused by name rather than misread. */
const NOT_YET = [
  'user-annotation', 'user-label', 'signature',
  'stage1-url', 'stage1-from-dir',
];

export interface ParsedPodArgs {
  /** The global flags: the object given to parsePodArgs, with those found among the pod's flags applied. */
  global: GlobalArgs;
  spec: PodSpec;
  help: boolean;
}

/** rkt's `run`/`prepare` command line (global flags among them are applied to `globals`). */
export function parsePodArgs(tokens: readonly string[], command: 'run' | 'prepare', globals: GlobalArgs = defaultGlobals()): ParsedPodArgs {
  const pod: Record<string, string | boolean | string[]> = {};
  const apps: Array<{ image: string; flags: Record<string, string | boolean | string[]>; args: string[] }> = [];
  const globalMounts: string[] = [];
  let help = false;

  for (let i = 0; i < tokens.length; ) {
    const tok = tokens[i];
    if (tok === '--help' || tok === '-h') {
      help = true;
      i++;
      continue;
    }
    if (tok === '--') {
      const current = apps[apps.length - 1];
      if (!current) throw new TspodError(ErrorCode.BadInput, '"--" must follow an image', { hint: 'write the image before its arguments' });
      while (++i < tokens.length && tokens[i] !== '---') current.args.push(tokens[i]);
      i++;
      continue;
    }
    const next = takeGlobalFlag(tokens, i, globals);
    if (next !== undefined) {
      i = next;
      continue;
    }
    if (!tok.startsWith('--')) {
      apps.push({ image: tok, flags: {}, args: [] });
      i++;
      continue;
    }
    const name = tok.slice(2).split('=')[0];
    if (command !== 'prepare' && name === 'quiet') throw unknownFlag(name, command);
    const m = matchFlag(tokens, i, POD_FLAGS) ?? matchFlag(tokens, i, APP_FLAGS);
    if (!m) {
      if (NOT_YET.includes(name)) throw new TspodError(ErrorCode.Unsupported, `--${name} is not supported by this version of tspod`);
      throw unknownFlag(name, command);
    }
    i = m.next;
    const current = apps[apps.length - 1];
    if (Object.hasOwn(APP_FLAGS, name)) {
      if (!current) {
        if (name === 'mount') {
          globalMounts.push(String(m.value));
          continue;
        }
        throw new TspodError(ErrorCode.BadInput, `--${name} must follow the image it applies to`, {
          hint: `write it after the image, e.g. tspod ${command} IMAGE --${name}=...`,
        });
      }
      setFlag(current.flags, name, APP_FLAGS[name as keyof typeof APP_FLAGS].kind, m.value);
    } else {
      setFlag(pod, name, POD_FLAGS[name as keyof typeof POD_FLAGS].kind, m.value);
    }
  }

  const spec: PodSpec = {
    apps: apps.map((a) => toAppSpec(a.image, a.flags, a.args)),
    volumes: ((pod.volume as string[]) ?? []).map(parseVolume),
    globalMounts: globalMounts.map(parseMount),
    inheritEnv: Boolean(pod['inherit-env']),
    setEnv: parseEnvList((pod['set-env'] as string[]) ?? [], '--set-env'),
    setEnvFiles: (pod['set-env-file'] as string[]) ?? [],
    podManifestFile: pod['pod-manifest'] as string | undefined,
    noOverlay: Boolean(pod['no-overlay']),
    privateUsers: Boolean(pod['private-users']),
    pullPolicy: pullPolicyFromFlags(
      { pullPolicy: pod['pull-policy'] as string | undefined, noStore: pod['no-store'] === true, storeOnly: pod['store-only'] === true },
      'new',
    ),
    stage1: {
      path: pod['stage1-path'] as string | undefined,
      name: pod['stage1-name'] as string | undefined,
      hash: pod['stage1-hash'] as string | undefined,
    },
    runtime: {
      net: pod.net ? (pod.net as string[]).join(',') : undefined,
      hostname: pod.hostname as string | undefined,
      interactive: pod.interactive === undefined ? undefined : Boolean(pod.interactive),
      ipc: pod.ipc as string | undefined,
    },
    uuidFileSave: pod['uuid-file-save'] as string | undefined,
    quiet: Boolean(pod.quiet),
    sysctls: ((pod.sysctl as string[]) ?? []).map((s) => splitKeyValue(s, '--sysctl')),
    ports: ((pod.port as string[]) ?? []).map(parsePort),
    dns: podDns(pod),
  };
  if (pod['mds-register'] === true) {
    if (command === 'prepare') {
      throw new TspodError(ErrorCode.BadInput, '--mds-register is a flag of run and run-prepared (the pod registers when it starts)', { hint: 'give it to run-prepared' });
    }
    spec.mdsRegister = true;
  }
  if (spec.podManifestFile) {
    // rkt's rule and wording: the pod manifest alone says what the pod is.
    const conflicting =
      spec.apps.length > 0 ||
      spec.volumes.length > 0 ||
      spec.globalMounts.length > 0 ||
      spec.inheritEnv ||
      spec.setEnv.length > 0 ||
      spec.setEnvFiles.length > 0 ||
      spec.sysctls.length > 0 ||
      spec.ports.length > 0 ||
      spec.pullPolicy !== 'new';
    if (conflicting) throw new TspodError(ErrorCode.BadInput, 'conflicting flags set with --pod-manifest (see --help)');
  } else if (!help && spec.apps.length === 0) {
    throw new TspodError(ErrorCode.BadInput, 'must provide at least one image or specify the pod manifest', {
      hint: `usage: tspod ${command} IMAGE [app flags] [-- args ---] [IMAGE ...]`,
    });
  }
  const netProblem = portsNetProblem(spec, spec.runtime.net);
  if (netProblem) throw new TspodError(ErrorCode.BadInput, netProblem, { hint: PORTS_NET_HINT });
  if (spec.stage1.path && spec.stage1.name) throw new TspodError(ErrorCode.BadInput, '--stage1-path and --stage1-name cannot be combined');
  return { global: globals, spec, help };
}

/** --dns, --dns-search, --dns-opt, --dns-domain, --hosts-entry (rkt's rules: contract/dns.ts); undefined: all defaults. */
function podDns(pod: Record<string, string | boolean | string[]>): PodDns | undefined {
  const list = (k: string) => (pod[k] as string[] | undefined) ?? [];
  try {
    const d = parseDnsFlags({
      dns: list('dns'),
      search: list('dns-search'),
      options: list('dns-opt'),
      domain: pod['dns-domain'] as string | undefined,
      hostsEntries: list('hosts-entry'),
    });
    return isDefaultDns(d) ? undefined : d;
  } catch (e) {
    throw new TspodError(ErrorCode.BadInput, (e as Error).message);
  }
}

function unknownFlag(name: string, command: string): TspodError {
  return new TspodError(ErrorCode.Usage, `unknown flag --${name}`, { hint: `see tspod ${command} --help` });
}



function toAppSpec(image: string, f: Record<string, string | boolean | string[]>, args: string[]): AppSpec {
  const gids = f['supplementary-gids'] as string | undefined;
  return {
    image,
    name: f.name as string | undefined,
    exec: f.exec as string | undefined,
    args,
    user: f.user as string | undefined,
    group: f.group as string | undefined,
    supplementaryGids: gids === undefined ? undefined : parseGids(gids),
    workingDir: f['working-dir'] as string | undefined,
    readonlyRootfs: f['readonly-rootfs'] === undefined ? undefined : Boolean(f['readonly-rootfs']),
    mounts: ((f.mount as string[]) ?? []).map(parseMount),
    environment: parseEnvList((f.environment as string[]) ?? [], '--environment'),
    annotations: ((f.annotation as string[]) ?? []).map((a) => splitKeyValue(a, '--annotation')),
    isolators: appIsolators(f),
    devices: ((f.device as string[]) ?? []).map(parseDevice),
  };
}

/** --port=NAME:[HOSTIP:]HOSTPORT (rkt's). */
function parsePort(s: string): ExposedPort {
  const p = parsePortFlag(s);
  if (typeof p === 'string') throw new TspodError(ErrorCode.BadInput, `--port ${p}`, { hint: 'e.g. --port=80-tcp:8080 or --port=http:127.0.0.1:8080' });
  return p;
}

/** --device=HOSTPATH[:PODPATH[:rwm]] (podman's syntax): checked here, the host path included. */
function parseDevice(s: string): DeviceSpec {
  const d = parseDeviceFlag(s);
  if (!d) throw new TspodError(ErrorCode.BadInput, `--device ${JSON.stringify(s)}: want HOSTPATH[:PODPATH[:rwm]]`);
  const why = deviceProblem(d);
  if (why) throw new TspodError(ErrorCode.BadInput, `--device ${why}`);
  return d;
}

/**
 * --caps-retain / --caps-remove / --oom-score-adj / --seccomp as the isolators they stand
 * for (they replace the image's isolators of the same kind, as in rkt).
 */
function appIsolators(f: Record<string, string | boolean | string[]>): AppcIsolator[] | undefined {
  const out: AppcIsolator[] = [];
  const retain = f['caps-retain'] as string | undefined;
  const remove = f['caps-remove'] as string | undefined;
  if (retain !== undefined && remove !== undefined) throw new TspodError(ErrorCode.BadInput, '--caps-retain and --caps-remove cannot be combined');
  for (const [flag, value, name] of [['caps-retain', retain, CAPS_RETAIN], ['caps-remove', remove, CAPS_REMOVE]] as const) {
    if (value === undefined) continue;
    const set = value
      .split(',')
      .filter((c) => c.trim())
      .map((c) => {
        const n = capabilityName(c);
        if (!n) throw new TspodError(ErrorCode.BadInput, `--${flag}: unknown capability ${JSON.stringify(c)}`, { hint: 'use names like CAP_NET_RAW or net_raw' });
        return n;
      });
    if (!set.length) throw new TspodError(ErrorCode.BadInput, `--${flag}: no capability given`);
    out.push({ name, value: { set } });
  }
  const oom = f['oom-score-adj'] as string | undefined;
  if (oom !== undefined) {
    const n = parseOomScoreAdj(oom);
    if (n === undefined) throw new TspodError(ErrorCode.BadInput, `--oom-score-adj: ${JSON.stringify(oom)} is not an integer from -1000 to 1000`);
    out.push({ name: OOM_SCORE_ADJ, value: n });
  }
  const seccomp = f.seccomp as string | undefined;
  if (seccomp !== undefined) {
    try {
      out.push(seccompFlagIsolator(seccomp));
    } catch (e) {
      throw new TspodError(ErrorCode.BadInput, `--seccomp: ${(e as Error).message}`, { hint: 'e.g. --seccomp mode=remove,errno=ENOSYS,swapoff,@rkt/default-blacklist' });
    }
  }
  // --memory, --cpu (appc/k8s quantities: the isolators' limits), --cpu-shares, --pids-limit
  const memory = f.memory as string | undefined;
  if (memory !== undefined) {
    const v = parseMemory(memory);
    if (typeof v === 'string') throw new TspodError(ErrorCode.BadInput, `--memory: ${v}`);
    out.push({ name: MEMORY, value: { limit: memory } });
  }
  const cpu = f.cpu as string | undefined;
  if (cpu !== undefined) {
    const v = parseCpu(cpu);
    if (typeof v === 'string') throw new TspodError(ErrorCode.BadInput, `--cpu: ${v}`);
    out.push({ name: CPU, value: { limit: cpu } });
  }
  const shares = f['cpu-shares'] as string | undefined;
  if (shares !== undefined) {
    const v = parseCpuShares(shares);
    if (typeof v === 'string') throw new TspodError(ErrorCode.BadInput, `--cpu-shares: ${v}`);
    out.push({ name: CPU_SHARES, value: v });
  }
  const pids = f['pids-limit'] as string | undefined;
  if (pids !== undefined) {
    const v = parsePidsLimit(pids);
    if (typeof v === 'string' && v !== 'max') throw new TspodError(ErrorCode.BadInput, `--pids-limit: ${v}`);
    out.push({ name: PIDS_LIMIT, value: v });
  }
  return out.length ? out : undefined;
}

function parseGids(s: string): number[] {
  return s
    .split(',')
    .filter(Boolean)
    .map((g) => {
      if (!/^\d+$/.test(g)) throw new TspodError(ErrorCode.BadInput, `--supplementary-gids: ${JSON.stringify(g)} is not a number`);
      return Number(g);
    });
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function splitKeyValue(s: string, flag: string): [string, string] {
  const eq = s.indexOf('=');
  if (eq <= 0) throw new TspodError(ErrorCode.BadInput, `${flag}: ${JSON.stringify(s)} is not NAME=VALUE`);
  return [s.slice(0, eq), s.slice(eq + 1)];
}

export function parseEnvList(items: string[], flag: string): Array<[string, string]> {
  const seen = new Set<string>();
  return items.map((item) => {
    const [k, v] = splitKeyValue(item, flag);
    if (!ENV_NAME.test(k)) throw new TspodError(ErrorCode.BadInput, `${flag}: ${JSON.stringify(k)} is not a valid variable name`);
    if (seen.has(k)) throw new TspodError(ErrorCode.BadInput, `${flag}: ${k} is set twice`);
    seen.add(k);
    return [k, v];
  });
}

/** appc's volume syntax: NAME,kind=host,source=/path[,readOnly=bool][,recursive=bool] or NAME,kind=empty[,mode=0755][,uid=0][,gid=0]. */
export function parseVolume(s: string): PodVolume {
  const [name, ...rest] = s.split(',');
  const bad = (why: string) =>
    new TspodError(ErrorCode.BadInput, `--volume ${JSON.stringify(s)}: ${why}`, {
      hint: 'use NAME,kind=host,source=/path[,readOnly=true][,recursive=false] or NAME,kind=empty[,mode=0755][,uid=N][,gid=N]',
    });
  if (!name || name.includes('=')) throw bad('it must start with the volume name');
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(name)) throw bad(`${JSON.stringify(name)} is not a valid name (lower-case letters, digits and dashes)`);
  const kv: Record<string, string> = {};
  for (const part of rest) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(`${JSON.stringify(part)} is not key=value`);
    const k = part.slice(0, eq);
    if (k in kv) throw bad(`${k} given twice`);
    kv[k] = part.slice(eq + 1);
  }
  const kind = kv.kind;
  const vol: PodVolume = { name, kind: 'empty' };
  const allowed = kind === 'host' ? ['kind', 'source', 'readOnly', 'recursive'] : ['kind', 'mode', 'uid', 'gid', 'readOnly'];
  for (const k of Object.keys(kv)) if (!allowed.includes(k)) throw bad(`unknown option ${JSON.stringify(k)} for kind=${kind}`);
  if (kind === 'host') {
    vol.kind = 'host';
    if (!kv.source) throw bad('kind=host needs source=/absolute/path');
    if (!kv.source.startsWith('/')) throw bad(`source ${JSON.stringify(kv.source)} is not an absolute path`);
    vol.source = kv.source;
    if (kv.recursive !== undefined) vol.recursive = parseBool(kv.recursive, 'volume recursive');
  } else if (kind === 'empty') {
    if (kv.mode !== undefined) {
      if (!/^0?[0-7]{3,4}$/.test(kv.mode)) throw bad(`mode ${JSON.stringify(kv.mode)} is not octal`);
      vol.mode = kv.mode;
    }
    for (const k of ['uid', 'gid'] as const) {
      if (kv[k] !== undefined) {
        if (!/^\d+$/.test(kv[k])) throw bad(`${k} ${JSON.stringify(kv[k])} is not a number`);
        vol[k] = Number(kv[k]);
      }
    }
  } else {
    throw bad(kind === undefined ? 'kind=host or kind=empty is missing' : `unknown kind ${JSON.stringify(kind)}`);
  }
  if (kv.readOnly !== undefined) vol.readOnly = parseBool(kv.readOnly, 'volume readOnly');
  return vol;
}

/** `volume=NAME,target=/path`. */
export function parseMount(s: string): MountSpec {
  const kv: Record<string, string> = {};
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw badMount(s, `${JSON.stringify(part)} is not key=value`);
    kv[part.slice(0, eq)] = part.slice(eq + 1);
  }
  for (const k of Object.keys(kv)) if (k !== 'volume' && k !== 'target') throw badMount(s, `unknown key ${JSON.stringify(k)}`);
  if (!kv.volume) throw badMount(s, 'volume=NAME is missing');
  if (!kv.target) throw badMount(s, 'target=PATH is missing');
  // A relative target is taken from the app's root (`data` is `/data`); a `..` could only climb out of it.
  const target = kv.target.startsWith('/') ? kv.target : `/${kv.target}`;
  const why = imagePathProblem(target);
  if (why) throw badMount(s, `target ${JSON.stringify(kv.target)} ${why}`);
  return { volume: kv.volume, target };
}

function badMount(s: string, why: string): TspodError {
  return new TspodError(ErrorCode.BadInput, `--mount ${JSON.stringify(s)}: ${why}`, { hint: 'use --mount volume=NAME,target=/path' });
}
