// stage1 /init: run by stage0 with CWD = the pod directory, the pod lock as
// TSPOD_LOCK_FD, and `[--debug] --net=… [--local-config=DIR] [--interactive] [--hostname=…] [--ipc=…]
// [--disable-capabilities-restriction] [--disable-paths] [--disable-seccomp] [--refused-to=DIR] UUID`
// (the three --disable-* are rkt's stage1 flags for --insecure-options=capabilities,
// =paths and =seccomp; --refused-to is where the pod directory goes if /init
// refuses to start it: returnRefusedPod).
// It reads the pod, writes each app's environment and restrictions (for enter)
// and the helper's plan, then execs the helper, which holds the lock for the
// pod's whole life. No Node process stays.
import fs from 'node:fs';
import path from 'node:path';
import { sys } from '../native/sys.js';
import { parseNet, readPodNetworks } from './contract/networks.js';
import { DEFAULT_LOCAL_CONFIG, POD_FILES, writePodFileAtomically, type PodManifest, type RuntimeConfig, type UserNamespace } from './contract/pod.js';
import { detectCgroups, describeLayout, originCgroupDirs, podCgroupSteps, type CgroupLayout, type CgroupStep } from './contract/cgroups.js';
import { limitsFromIsolators, type Limits } from './contract/resources.js';
import { podPortsProblem } from './contract/ports.js';
import { appPlans, buildPlan, readJson, readUserNamespace, type AppPlan, type PodContext } from './pod-setup.js';
import { readPodDns, writeEtcFiles } from './contract/dns.js';
import { helperPath } from './sea.js';
import { addMetadataUrl } from './mds.js';
import { setUpNetworks, tearDownNetworks } from './network/setup.js';

export interface InitArgs {
  debug: boolean;
  net: string;
  /** --local-config: named networks' CNI configs are in <dir>/net.d. */
  localConfig: string;
  interactive: boolean;
  hostname?: string;
  ipc?: string;
  disableCapabilities?: boolean;
  disablePaths?: boolean;
  disableSeccomp?: boolean;
  /** Where the pod directory goes when the start is refused (stage0's choice: prepared/U or garbage/U). */
  refusedTo?: string;
  uuid: string;
}

export function parseInitArgs(argv: string[]): InitArgs {
  const out: Partial<InitArgs> = { debug: false, interactive: false, net: 'default', localConfig: DEFAULT_LOCAL_CONFIG };
  const positional: string[] = [];
  for (const a of argv) {
    if (a === '--debug') out.debug = true;
    else if (a === '--interactive') out.interactive = true;
    else if (a.startsWith('--net=')) out.net = a.slice(6);
    else if (a.startsWith('--local-config=')) out.localConfig = a.slice(15);
    else if (a.startsWith('--hostname=')) out.hostname = a.slice(11);
    else if (a.startsWith('--ipc=')) out.ipc = a.slice(6);
    else if (a === '--disable-capabilities-restriction') out.disableCapabilities = true;
    else if (a === '--disable-paths') out.disablePaths = true;
    else if (a === '--disable-seccomp') out.disableSeccomp = true;
    else if (a.startsWith('--refused-to=')) out.refusedTo = a.slice(13);
    else if (a.startsWith('--')) throw new Error(`unknown flag ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 1) throw new Error('usage: init [--debug] [--net=LIST] [--local-config=DIR] [--interactive] [--hostname=NAME] [--ipc=auto|private|parent] [--disable-capabilities-restriction] [--disable-paths] [--disable-seccomp] [--refused-to=DIR] UUID');
  return { ...(out as InitArgs), uuid: positional[0] };
}

/** The --net value as runtime-config keeps it: host, none, or the list of private networks (`default` when empty). */
export function normaliseNet(net: string): string {
  const choice = parseNet(net);
  if (choice.kind !== 'private') return choice.kind;
  return choice.networks.map((n) => (n.args === undefined ? n.name : `${n.name}:${n.args}`)).join(',');
}

/** rkt's --ipc: auto means private in this stage1 (as in rkt's coreos stage1). */
export function normaliseIpc(ipc: string | undefined): 'private' | 'parent' {
  if (ipc === undefined || ipc === 'auto' || ipc === 'private') return 'private';
  if (ipc === 'parent') return 'parent';
  throw new Error(`--ipc=${ipc}: want auto, private or parent`);
}

function prepareDirectories(podDir: string, manifest: PodManifest, apps: AppPlan[], copied: (a: string) => string | undefined, userns?: UserNamespace): void {
  // --private-users: the range's ids for what the pod owns (its root is base, N is base+N).
  const uid = (n: number) => (userns ? userns.uidMap[0][1] + n : n);
  const gid = (n: number) => (userns ? userns.gidMap[0][1] + n : n);
  for (const d of [POD_FILES.statusDir, POD_FILES.appsPidDir, POD_FILES.envDir, POD_FILES.securityDir]) fs.mkdirSync(path.join(podDir, d), { recursive: true, mode: 0o750 });
  fs.mkdirSync(path.join(podDir, POD_FILES.stage1Rootfs), { recursive: true, mode: 0o755 });
  for (const a of apps) {
    if (copied(a.name)) continue;
    const upper = path.join(podDir, POD_FILES.overlayUpper(a.name));
    const work = path.join(podDir, POD_FILES.overlayWork(a.name));
    fs.mkdirSync(upper, { recursive: true, mode: 0o755 });
    fs.mkdirSync(work, { recursive: true, mode: 0o700 });
    if (userns) {
      // The app's / is the upper directory's root: the pod's root owns it.
      fs.chownSync(upper, uid(0), gid(0));
      fs.chownSync(work, uid(0), gid(0));
    }
  }
  for (const v of manifest.volumes ?? []) {
    if (v.kind !== 'empty') continue;
    const dir = path.join(podDir, POD_FILES.sharedVolume(v.name));
    fs.mkdirSync(dir, { recursive: true });
    fs.chmodSync(dir, parseInt(v.mode ?? '0755', 8));
    fs.chownSync(dir, uid(v.uid ?? 0), gid(v.gid ?? 0));
  }
}

/**
 * The pod's cgroup steps for the helper's plan (contract/cgroups.ts): it makes
 * the cgroups, writes the limits and joins the pod's init cgroup before anything
 * else (pid 1 stays there; each app child moves on into its own). Without
 * cgroups, a pod that asks for a limit does not run.
 */
function cgroupSteps(layout: CgroupLayout, uuid: string, apps: AppPlan[], podLimits: Limits, debug: boolean): CgroupStep[] {
  const explicit = (l: Limits) => Object.values(l).some((v) => v !== undefined);
  if (layout.version === 0) {
    const asked = apps.find((a) => explicit(a.limits));
    if (asked || explicit(podLimits)) throw new Error(`${asked ? `app ${asked.name}` : 'the pod'} has a resource limit, but this host has no cgroup file system at /sys/fs/cgroup`);
    if (debug) process.stderr.write('tspod stage1: no cgroup file system: the pod runs without cgroups\n');
    return [];
  }
  try {
    return podCgroupSteps(layout, uuid, apps.map((a) => ({ name: a.name, limits: a.limits, devices: a.deviceRules })), podLimits);
  } catch (e) {
    throw new Error(`cgroups (${describeLayout(layout)}): ${(e as Error).message}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const args = parseInitArgs(argv);
  try {
    return await start(args);
  } catch (e) {
    // start() undid what it had made; the pod must not stay in run/ as if it had run.
    if (args.refusedTo) returnRefusedPod(process.cwd(), args.uuid, args.refusedTo);
    throw e;
  }
}

/**
 * A refused start: everything of /init's attempt that status would show (the
 * networks, the runtime config, the apps' status directory) is removed, and the
 * pod directory goes where stage0 said (prepared/U for run-prepared: it can be run
 * again; garbage/U for run: removed by the next gc, as an aborted prepare), a
 * sibling state directory only. Its lock (the directory's fd) goes with it.
 */
export function returnRefusedPod(podDir: string, uuid: string, target: string): void {
  const sibling = path.isAbsolute(target) && path.basename(target) === uuid && path.dirname(path.dirname(target)) === path.dirname(path.dirname(podDir));
  if (!sibling) {
    process.stderr.write(`tspod stage1: --refused-to=${target} is not a state directory beside ${podDir}: the pod stays there\n`);
    return;
  }
  for (const f of [POD_FILES.networks, POD_FILES.runtimeConfig, POD_FILES.plan, POD_FILES.netRelease]) fs.rmSync(path.join(podDir, f), { force: true });
  fs.rmSync(path.join(podDir, POD_FILES.statusDir), { recursive: true, force: true });
  try {
    fs.renameSync(podDir, target);
  } catch (e) {
    process.stderr.write(`tspod stage1: the refused pod stays in ${podDir}: ${(e as Error).message}\n`);
  }
}

async function start(args: InitArgs): Promise<number> {
  const podDir = process.cwd();
  const lockFd = Number(process.env.TSPOD_LOCK_FD);
  if (!Number.isInteger(lockFd)) throw new Error('TSPOD_LOCK_FD is not set: stage1 /init must be started by tspod');
  const manifest = readJson<PodManifest>(path.join(podDir, POD_FILES.manifest));
  const runtime: RuntimeConfig = {
    uuid: args.uuid,
    net: normaliseNet(args.net),
    ipc: normaliseIpc(args.ipc),
    hostname: args.hostname ?? `tspod-${args.uuid}`,
    interactive: args.interactive,
    debug: args.debug,
    disableCapabilities: Boolean(args.disableCapabilities),
    disablePaths: Boolean(args.disablePaths),
    disableSeccomp: Boolean(args.disableSeccomp),
  };
  if (runtime.interactive && manifest.apps.length !== 1) throw new Error('--interactive needs a pod with exactly one app');
  const portsProblem = podPortsProblem(manifest, runtime.net);
  if (portsProblem) throw new Error(portsProblem);
  const copied = (app: string) => {
    const dir = path.join(podDir, POD_FILES.appCopiedRootfs(app));
    return fs.existsSync(dir) ? dir : undefined;
  };
  // (--interactive on a terminal: the helper gives the pod a pty of its own as /dev/console)
  const userns = readUserNamespace(podDir);
  const cgroups = detectCgroups();
  const ctx: PodContext = { podDir, uuid: args.uuid, manifest, runtime, copiedRootfs: copied, userns, cgroups, cgroupOrigin: originCgroupDirs(cgroups) };
  const apps = appPlans(ctx);
  let podLimits: Limits;
  try {
    podLimits = limitsFromIsolators(manifest.isolators);
  } catch (e) {
    throw new Error(`the pod: ${(e as Error).message}`);
  }
  ctx.cgroupSteps = cgroupSteps(cgroups, args.uuid, apps, podLimits, args.debug);
  prepareDirectories(podDir, manifest, apps, copied, userns);
  const helper = helperPath();
  const choice = parseNet(runtime.net);
  // The CNI plugins must not inherit the pod lock (execve clears CLOEXEC again for the helper).
  sys().setCloexec(lockFd, true);
  // The networks first: what follows (the metadata service's URL, DNS) reads the pod's `networks`.
  const net = choice.kind === 'private' ? await setUpNetworks({ podDir, uuid: args.uuid, requests: choice.networks, localConfig: args.localConfig, manifest, apps, helper, lockFd }) : undefined;
  try {
    addMetadataUrl(podDir, runtime.net, apps);
    for (const a of apps) {
      writePodFileAtomically(path.join(podDir, POD_FILES.appEnv(a.name)), a.env.map((e) => `${e.name}=${e.value}\n`).join(''));
      writePodFileAtomically(path.join(podDir, POD_FILES.appSecurity(a.name)), JSON.stringify(a.security));
    }
    writePodFileAtomically(path.join(podDir, POD_FILES.runtimeConfig), JSON.stringify(runtime));
    // Each app's /etc/resolv.conf and /etc/hosts: --dns*, --hosts-entry, else the DNS
    // data of the pod's networks (their `networks` file, written just above).
    ctx.etc = writeEtcFiles(podDir, readPodDns(podDir), readPodNetworks(podDir), runtime.hostname);
    if (net) {
      ctx.netns = net.netns;
      // Released as soon as the apps have exited, by the outer helper (still holding the lock).
      ctx.exitExec = [helper, 'net-release', net.release];
    }
    const planFile = path.join(podDir, POD_FILES.plan);
    writePodFileAtomically(planFile, buildPlan(ctx, apps, runtime.interactive));
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', TSPOD_LOCK_FD: String(lockFd) };
    if (args.debug) env.TSPOD_DEBUG = '1';
    return sys().execve(helper, ['tspod-helper', 'run', planFile], env, [lockFd]);
  } catch (e) {
    if (net) tearDownNetworks(podDir, helper);
    throw e;
  }
}
