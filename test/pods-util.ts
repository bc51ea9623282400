// Shared by the pod tests (test/pods-*.test.ts): the probe app, pods started in
// the background, host-side process and namespace views, and the pods/ tree.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import { describeResult, fixture, FIXTURES_DIR, makeTempDir, onExit, removeTreeSafely, REPO_ROOT, TSPOD_BIN, type DataDir, type RunResult } from './harness/index.js';

export const BUSYBOX = fixture('busybox').source;
export const MULTI = fixture('multi').source;
export const IS_ROOT = process.getuid?.() === 0;
export const SKIP = !IS_ROOT ? 'needs root' : !fs.existsSync(TSPOD_BIN) || !fs.existsSync(path.join(REPO_ROOT, 'bin/stage1.aci')) ? 'not built (make)' : false;

/** appc's 14 default capabilities as /proc/self/status prints a set. */
export const DEFAULT_CAPS = '00000000a80425fb';

// ---------------------------------------------------------------- scratch directories

const scratchDirs: string[] = [];

/** A scratch directory (host volume sources, manifests) that removeScratchDirs() removes. */
export function scratchDir(name: string): string {
  const dir = makeTempDir(name);
  scratchDirs.push(dir);
  return dir;
}

/** Removes every scratch directory (never across a mount point). */
export function removeScratchDirs(): void {
  for (const dir of scratchDirs.splice(0)) removeTreeSafely(dir);
}

// ---------------------------------------------------------------- the probe

/**
 * A busybox sh script that prints what it sees as `probe.KEY=VALUE` lines, and
 * `probe.KEY[]=LINE` for every line of a multi-line value. EXTRA (more sh)
 * runs before the final `probe.done=yes`.
 */
export function probeScript(extra = ''): string {
  return `
p() { printf 'probe.%s=%s\\n' "$1" "$2"; }
l() { k=$1; shift; "$@" 2>&1 | while IFS= read -r line; do printf 'probe.%s[]=%s\\n' "$k" "$line"; done; }
p pid "$$"
p cwd "$(pwd)"
p uid "$(id -u)"
p gid "$(id -g)"
p groups "$(id -G)"
p hostname "$(hostname)"
for n in mnt pid uts ipc net; do p "ns.$n" "$(readlink /proc/self/ns/$n)"; done
p pid1 "$(tr '\\0' ' ' </proc/1/cmdline)"
l env env
l mountinfo cat /proc/self/mountinfo
l hosts cat /etc/hosts
p etc-hostname "$(cat /etc/hostname)"
p mtab "$(readlink /etc/mtab)"
p dev "$(ls /dev | tr '\\n' ' ')"
if touch /.probe-w 2>/dev/null; then rm -f /.probe-w; p root-writable yes; else p root-writable no; fi
if touch /sys/.probe-w 2>/dev/null; then p sys-writable yes; else p sys-writable no; fi
if touch /proc/.probe-w 2>/dev/null; then p proc-writable yes; else p proc-writable no; fi
l caps grep Cap /proc/self/status
p proc-mounted "$(test -r /proc/self/status && echo yes || echo no)"
${extra}
p done yes
`;
}

export interface Probe {
  one: Map<string, string>;
  many: Map<string, string[]>;
  /** A single value (fails the test when absent). */
  get(key: string): string;
  /** The lines of a multi-line value ([] when absent). */
  lines(key: string): string[];
  /** The environment it printed. */
  env(): Map<string, string>;
  /** Parsed /proc/self/mountinfo: mount point → { fsType, source, options (per-mount and super) }. */
  mounts(): Map<string, MountInfo>;
  /** CapBnd, CapEff, ... */
  caps(): Record<string, string>;
}

export interface MountInfo {
  mountPoint: string;
  root: string;
  fsType: string;
  source: string;
  options: string[];
  superOptions: string[];
}

export function parseProbe(out: string): Probe {
  const one = new Map<string, string>();
  const many = new Map<string, string[]>();
  for (const line of out.split('\n')) {
    const m = /^probe\.([\w.-]+)(\[\])?=(.*)$/.exec(line);
    if (!m) continue;
    if (m[2]) {
      const list = many.get(m[1]) ?? [];
      list.push(m[3]);
      many.set(m[1], list);
    } else {
      one.set(m[1], m[3]);
    }
  }
  const probe: Probe = {
    one,
    many,
    get(key) {
      const v = one.get(key);
      assert.ok(v !== undefined, `the probe printed no ${key}; output:\n${out}`);
      return v;
    },
    lines: (key) => many.get(key) ?? [],
    env() {
      const env = new Map<string, string>();
      for (const l of probe.lines('env')) {
        const eq = l.indexOf('=');
        if (eq > 0) env.set(l.slice(0, eq), l.slice(eq + 1));
      }
      return env;
    },
    mounts() {
      const out = new Map<string, MountInfo>();
      for (const l of probe.lines('mountinfo')) {
        const f = l.split(' ');
        const sep = f.indexOf('-');
        const mi: MountInfo = {
          root: unescape(f[3]),
          mountPoint: unescape(f[4]),
          options: f[5].split(','),
          fsType: f[sep + 1],
          source: unescape(f[sep + 2]),
          superOptions: (f[sep + 3] ?? '').split(','),
        };
        out.set(mi.mountPoint, mi); // the last mount at a point is the visible one
      }
      return out;
    },
    caps() {
      const caps: Record<string, string> = {};
      for (const l of probe.lines('caps')) {
        const m = /^(Cap\w+):\s*([0-9a-f]+)$/.exec(l);
        if (m) caps[m[1]] = m[2];
      }
      return caps;
    },
  };
  return probe;
}

function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The host's (this process's) namespace ids: `mnt:[4026531841]`. */
export function hostNs(kind: 'mnt' | 'pid' | 'uts' | 'ipc' | 'net'): string {
  return fs.readlinkSync(`/proc/self/ns/${kind}`);
}

/** An environment map without the variables a shell adds itself. */
export function withoutShellVars(env: Map<string, string>, ...more: string[]): Map<string, string> {
  const out = new Map(env);
  for (const k of ['PWD', 'SHLVL', 'OLDPWD', '_', ...more]) out.delete(k);
  return out;
}

// ---------------------------------------------------------------- pods in the background

/** Waits until `cond` returns a truthy value; the timeout only keeps a broken pod from hanging the suite. */
export async function waitFor<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 60_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(25);
  }
}

export interface BackgroundPod {
  /** The spawned `tspod run`/`run-prepared` process (it becomes the helper). */
  proc: ChildProcess;
  pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves once the process has exited. */
  exited: Promise<RunResult>;
  /** Waits until stdout matches. */
  waitOutput(re: RegExp, what?: string): Promise<RegExpExecArray>;
}

/** The environment of a tspod a test spawns: the test's, less NODE_OPTIONS and the runner's, with node on PATH. */
export function tspodEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of Object.keys(env)) if (k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST')) delete env[k];
  const nodeDir = path.dirname(process.execPath);
  if (!(env.PATH ?? '').split(':').includes(nodeDir)) env.PATH = `${env.PATH ?? '/usr/bin:/bin'}:${nodeDir}`;
  return env;
}

/**
 * unshare(1)'s arguments for `tspod --dir=DIR ARGS` in a private mount namespace
 * in which the sh `setup` ran first (e.g. the pure cgroup v2 layout:
 * V2_CGROUP_SETUP).
 */
export function unshareArgv(setup: string, dir: string, args: string[]): string[] {
  return ['-m', '--propagation', 'private', '--', 'sh', '-c', `${setup} && exec "$0" "$@"`, TSPOD_BIN, `--dir=${dir}`, ...args];
}

/** A /sys/fs/cgroup that is a cgroup2 and nothing else (the v1 hierarchies unmounted): pure v2. */
export const V2_CGROUP_SETUP = 'umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup';

/** Runs tspod through unshareArgv and waits for it. */
export function unshareTspod(setup: string, dir: string, args: string[]): RunResult {
  const argv = unshareArgv(setup, dir, args);
  const r = spawnSync('unshare', argv, { cwd: REPO_ROOT, env: tspodEnv(), encoding: 'utf8', timeout: 120_000 });
  return { code: r.status ?? 254, signal: r.signal, stdout: r.stdout, stderr: r.stderr, timedOut: false, argv: ['unshare', ...argv] };
}

/** Starts `tspod --dir=DIR ARGS` without waiting for it (run, run-prepared). */
export function startTspod(dd: DataDir, args: string[], opts: { env?: Record<string, string>; stdin?: 'ignore' | 'pipe'; unshareSetup?: string } = {}): BackgroundPod {
  // unshareSetup: in a private mount namespace, after that sh (unshareArgv)
  const [bin, argv] = opts.unshareSetup ? ['unshare', unshareArgv(opts.unshareSetup, dd.path, args)] : [TSPOD_BIN, [`--dir=${dd.path}`, ...args]];
  const proc = spawn(bin, argv, { cwd: REPO_ROOT, env: tspodEnv(opts.env), stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const unregister = onExit(() => proc.kill('SIGKILL'));
  const exited = new Promise<RunResult>((resolve) => {
    proc.on('close', (code, signal) => {
      unregister();
      resolve({ code: code ?? 128 + (signal ? signalNumber(signal) : 0), signal, stdout: out, stderr: err, timedOut: false, argv: [bin, ...argv] });
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  return {
    proc,
    pid: proc.pid!,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitOutput: async (re, what) => {
      try {
        return await waitFor(() => {
          const m = re.exec(out);
          if (m) return m;
          if (done) throw new Error(`tspod exited before printing ${what ?? re}`);
          return undefined;
        }, what ?? String(re));
      } catch (e) {
        throw new Error(`${(e as Error).message}: ${argv.join(' ')}\n--- stdout\n${out}\n--- stderr\n${err}`);
      }
    },
  };
}

function signalNumber(s: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[s] ?? 0;
}

/** Runs a tspod command and insists on exit 0. */
export async function ok(dd: DataDir, args: string[], opts: Parameters<DataDir['tspod']>[1] = {}): Promise<RunResult> {
  const r = await dd.tspod(args, opts);
  assert.equal(r.code, 0, describeResult(r));
  return r;
}

/** Stops a background pod (if it still runs) and waits for its run process to end. */
export async function stopAndWait(dd: DataDir, pod: BackgroundPod, uuid: string | undefined, force = false): Promise<RunResult> {
  if (pod.proc.exitCode === null && pod.proc.signalCode === null) {
    if (uuid) await dd.tspod(['stop', ...(force ? ['--force'] : []), uuid]);
    else pod.proc.kill(force ? 'SIGKILL' : 'SIGTERM');
  }
  return pod.exited;
}

/**
 * A pod whose one app (busybox) prints the probe, then `probe-ready`, then
 * sleeps until stopped. Returns once it is ready, with the app's probe.
 */
export interface ProbedPod {
  uuid: string;
  dir: string;
  bg: BackgroundPod;
  run: Probe;
  /** `tspod enter [--app=A] UUID /bin/sh -c PROBE` in the running pod. */
  enter(app?: string, extra?: string): Promise<Probe>;
  /** Stops the pod (SIGTERM) and returns the run result. */
  stop(): Promise<RunResult>;
}

/** TERM that enter must pass through (the caller's). */
export const ENTER_TERM = 'tspod-test-term';

export async function startProbedPod(
  dd: DataDir,
  opts: { podFlags?: string[]; image?: string; appFlags?: string[]; extra?: string; env?: Record<string, string>; more?: string[] } = {},
): Promise<ProbedPod> {
  const uuidFile = path.join(dd.path, `uuid-${Math.random().toString(36).slice(2)}`);
  const script = `${probeScript(opts.extra)}\necho probe-ready\nexec sleep 3600`;
  const bg = startTspod(
    dd,
    [
      'run',
      `--uuid-file-save=${uuidFile}`,
      ...(opts.podFlags ?? []),
      opts.image ?? BUSYBOX,
      ...(opts.appFlags ?? []),
      '--exec',
      '/bin/sh',
      '--',
      '-c',
      script,
      '---',
      ...(opts.more ?? []),
    ],
    { env: opts.env },
  );
  try {
    await bg.waitOutput(/^probe-ready$/m, 'the probe');
  } catch (e) {
    bg.proc.kill('SIGTERM');
    await bg.exited;
    throw e;
  }
  const uuid = fs.readFileSync(uuidFile, 'utf8').trim();
  const dir = path.join(dd.path, 'pods', 'run', uuid);
  const run = parseProbe(bg.stdout());
  return {
    uuid,
    dir,
    bg,
    run,
    enter: async (app, extra) => {
      const r = await dd.tspod(['enter', ...(app ? [`--app=${app}`] : []), uuid, '/bin/sh', '-c', probeScript(extra)], { env: { TERM: ENTER_TERM } });
      assert.equal(r.code, 0, describeResult(r));
      return parseProbe(r.stdout);
    },
    stop: () => stopAndWait(dd, bg, uuid),
  };
}

/** Runs `fn` with a started probed pod, and stops the pod whatever happens. */
export async function withProbedPod<T>(dd: DataDir, opts: Parameters<typeof startProbedPod>[1], fn: (pod: ProbedPod) => Promise<T>): Promise<T> {
  const pod = await startProbedPod(dd, opts);
  try {
    return await fn(pod);
  } finally {
    await stopAndWait(dd, pod.bg, pod.uuid, false).catch(() => undefined);
    if (pod.bg.proc.exitCode === null && pod.bg.proc.signalCode === null) {
      pod.bg.proc.kill('SIGKILL');
      await pod.bg.exited;
    }
  }
}

// ---------------------------------------------------------------- the host's view

export interface HostProcess {
  pid: number;
  ppid: number;
  comm: string;
  exe: string;
  cmdline: string;
  cwd: string;
  pidNs: string;
}

export function readProcess(pid: number): HostProcess | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const fields = stat.slice(close + 2).split(' ');
    const link = (n: string) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/${n}`);
      } catch {
        return '';
      }
    };
    return {
      pid,
      ppid: Number(fields[1]),
      comm: stat.slice(stat.indexOf('(') + 1, close),
      exe: link('exe'),
      cmdline: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '),
      cwd: link('cwd'),
      pidNs: link('ns/pid'),
    };
  } catch {
    return undefined;
  }
}

export function allProcesses(): HostProcess[] {
  const out: HostProcess[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const p = readProcess(Number(n));
    if (p) out.push(p);
  }
  return out;
}

/** `root` and every process below it. */
export function descendants(root: number, procs = allProcesses()): HostProcess[] {
  const byParent = new Map<number, HostProcess[]>();
  for (const p of procs) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: HostProcess[] = [];
  const self = procs.find((p) => p.pid === root);
  if (self) out.push(self);
  const walk = (pid: number) => {
    for (const c of byParent.get(pid) ?? []) {
      out.push(c);
      walk(c.pid);
    }
  };
  walk(root);
  return out;
}

// ---------------------------------------------------------------- the pods/ tree

/** Every pod directory under DIR/pods: `state/uuid` (and the uuids/ markers as `uuids/xx/uuid`). */
export function podsTree(dataDir: string): string[] {
  const root = path.join(dataDir, 'pods');
  const out: string[] = [];
  let states: string[];
  try {
    states = fs.readdirSync(root);
  } catch {
    return out;
  }
  for (const s of states) {
    const dir = path.join(root, s);
    for (const e of fs.readdirSync(dir)) {
      if (s === 'uuids') for (const u of fs.readdirSync(path.join(dir, e))) out.push(`uuids/${e}/${u}`);
      else out.push(`${s}/${e}`);
    }
  }
  return out.sort();
}

/** The image layer directories of an app (lowest first), as the pod recorded them. */
export function appLayers(podDir: string, app: string): string[] {
  return JSON.parse(fs.readFileSync(path.join(podDir, 'appsinfo', app, 'layers'), 'utf8')) as string[];
}

// ---------------------------------------------------------------- failures and ACIs

/**
 * Insists on exit 254 and exactly one error line on stderr matching `line` (after
 * `tspod: `); fetch's `using image from file` note before it does not count.
 */
export function failsWith(r: RunResult, line: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l && !l.startsWith('tspod: using image from file '));
  assert.equal(r.code, 254, describeResult(r));
  assert.equal(lines.length, 1, describeResult(r));
  assert.match(lines[0].replace(/^tspod: /, ''), line, describeResult(r));
}

/** The busybox fixture's tree (GNU tar's extract of busybox.aci). */
export const BUSYBOX_TREE = path.join(FIXTURES_DIR, 'ref', 'aci', 'rootfs');

/**
 * Writes DIR/NAME.aci with GNU tar: the busybox tree (less what `drop` names,
 * plus what `add` does to a copy of it) and an appc manifest named
 * example.com/NAME whose app is `app` (user and group 0 unless it says).
 */
export function busyboxAci(dir: string, name: string, app: Record<string, unknown>, opts: { drop?: string[]; add?: (rootfs: string) => void } = {}): string {
  const tree = path.join(dir, name);
  fs.rmSync(tree, { recursive: true, force: true });
  fs.mkdirSync(tree);
  const cp = spawnSync('cp', ['-a', BUSYBOX_TREE, path.join(tree, 'rootfs')]);
  assert.equal(cp.status, 0, String(cp.stderr));
  for (const d of opts.drop ?? []) fs.rmSync(path.join(tree, 'rootfs', d), { recursive: true, force: true });
  opts.add?.(path.join(tree, 'rootfs'));
  const manifest = {
    acKind: 'ImageManifest',
    acVersion: '0.8.11',
    name: `example.com/${name}`,
    labels: [
      { name: 'version', value: '1' },
      { name: 'os', value: 'linux' },
      { name: 'arch', value: 'amd64' },
    ],
    app: { user: '0', group: '0', ...app },
  };
  fs.writeFileSync(path.join(tree, 'manifest'), JSON.stringify(manifest));
  const file = path.join(dir, `${name}.aci`);
  const tar = spawnSync('tar', ['--numeric-owner', '-C', tree, '-cf', file, 'manifest', 'rootfs']);
  assert.equal(tar.status, 0, String(tar.stderr));
  return file;
}
