// `make bench`: tspod against podman, skopeo+umoci, runc and bare node, side by
// side in one run with alternating repetitions (A B C A B C …), medians with
// min–max. Not part of `make test`; no assertion here fails on a timing.
//
//   issue 2  fetch of the ~180 MB 3-layer image from a loopback registry into
//            empty storage: tspod fetch | podman pull | skopeo copy + umoci raw unpack;
//            the store's disk use for two images that share layers.
//   issue 3  start of a busybox /bin/true pod (--net=none): tspod run-prepared |
//            podman run --rm --network none | runc run | node -e 0 (plain, scrubbed);
//            tspod prepare of busybox vs the big image; resident memory of the
//            host processes that stay per running pod vs podman's conmon.
//   issue 10 the same start with the default isolation turned off
//            (--insecure-options=all-run): what caps, seccomp, masks and cgroups cost.
//   issue 8  the start with a network: tspod run-prepared --net=default | podman run
//            --rm (its default network) | both with --net=none (--only=network).
//
// Output: a table on stdout, bench/out/results.md and bench/out/results.json.
//
//   node build/test/bench/bench.js [--quick] [--only=fetch,profile,disk,start,prepare,memory,breakdown]
//                                  [--fetch-reps=N] [--start-reps=N] [--prepare-reps=N]
//                                  [--memory-reps=N] [--breakdown-reps=N]
//
// Every tool gets the same environment (this process's, as the user has it),
// including NODE_EXTRA_CA_CERTS when it is set: the report says which it was.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import {
  BIG_LAYOUT,
  OCI_LAYOUT,
  REPO_ROOT,
  SKOPEO_POLICY,
  TSPOD_BIN as REPO_TSPOD_BIN,
  ensureBigFixture,
  ensureFixtures,
  killPids,
  mountsUnder,
  onExit,
  processesReferencing,
  readLayoutImage,
  removeTreeSafely,
  startRegistry,
  unmountAll,
  type Registry,
} from '../harness/index.js';

// ------------------------------------------------------------------ options

interface Options {
  only: Set<string>;
  fetchReps: number;
  startReps: number;
  prepareReps: number;
  memoryReps: number;
  breakdownReps: number;
  warmup: boolean;
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  const num = (name: string, dflt: number): number => {
    const a = argv.find((x) => x.startsWith(`--${name}=`));
    const v = a ? Number(a.slice(name.length + 3)) : dflt;
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} wants a positive integer`);
    return v;
  };
  const onlyArg = argv.find((x) => x.startsWith('--only='));
  const all = ['fetch', 'profile', 'disk', 'start', 'network', 'prepare', 'memory', 'breakdown'];
  const only = new Set(onlyArg ? onlyArg.slice(7).split(',').filter(Boolean) : all);
  for (const o of only) if (!all.includes(o)) throw new Error(`--only: unknown part ${o} (have ${all.join(', ')})`);
  return {
    only,
    fetchReps: num('fetch-reps', quick ? 1 : 7),
    startReps: num('start-reps', quick ? 2 : 11),
    prepareReps: num('prepare-reps', quick ? 2 : 11),
    memoryReps: num('memory-reps', quick ? 1 : 3),
    breakdownReps: num('breakdown-reps', quick ? 2 : 7),
    warmup: !quick,
  };
}

// ------------------------------------------------------------------ environment and scratch space

/** What every tool runs with: this process's environment as the user gave it. */
const ENV: NodeJS.ProcessEnv = { ...process.env };
/** stage0's scrubbed environment for stage1 (stage0/run.ts: PATH and TERM only). */
const SCRUBBED_ENV: NodeJS.ProcessEnv = {
  PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  ...(process.env.TERM ? { TERM: process.env.TERM } : {}),
};

const OUT_DIR = path.join(REPO_ROOT, 'bench', 'out');
const ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'tspod-bench-'));
// The harness puts the registry's scratch space under TSPOD_TEST_ROOT (set after ENV was copied).
process.env.TSPOD_TEST_ROOT = path.join(ROOT, 'harness');

/**
 * A private copy of the built CLI (bin/: the sh launcher, the bundle, stage1.aci,
 * the helper), inside the repository so that the bundle still finds node_modules.
 * Other work in this tree may rebuild bin/ while the benchmark runs; the copy is
 * what a user installs, unchanged for the whole run.
 */
const SNAPSHOT = path.join(REPO_ROOT, 'build', `bench-bin-${process.pid}`);
const TSPOD_BIN = path.join(SNAPSHOT, 'bin', path.basename(REPO_TSPOD_BIN));

function snapshotCli(): string {
  const src = path.dirname(REPO_TSPOD_BIN);
  for (let attempt = 1; ; attempt++) {
    fs.rmSync(SNAPSHOT, { recursive: true, force: true });
    fs.mkdirSync(SNAPSHOT, { recursive: true });
    fs.cpSync(src, path.join(SNAPSHOT, 'bin'), { recursive: true, preserveTimestamps: true });
    const r = spawnSync(TSPOD_BIN, ['version'], { encoding: 'utf8', env: ENV });
    if (r.status === 0) return (r.stdout.match(/Version:\s*(\S+)/)?.[1] ?? r.stdout.trim().split('\n')[0]) ?? '?';
    if (attempt >= 6) throw new Error(`the copy of ${src} does not run (tspod version exited ${r.status}): ${r.stderr.trim().slice(-500)}`);
    log(`bin/ looks half-built (another build running?); copying it again in 10 s`);
    spawnSync('sleep', ['10']);
  }
}

let seq = 0;
function scratch(prefix: string): string {
  const d = path.join(ROOT, `${prefix}-${++seq}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

// ------------------------------------------------------------------ running things

interface RunOpts {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

function run(cmd: string, args: readonly string[], o: RunOpts = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    env: o.env ?? ENV,
    cwd: o.cwd ?? ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
    timeout: o.timeoutMs ?? 600_000,
  });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return r;
}

/** Runs and requires exit 0; returns stdout. */
function must(cmd: string, args: readonly string[], o: RunOpts = {}): string {
  const r = run(cmd, args, o);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal}):\n${(r.stderr || r.stdout).trim().split('\n').slice(-20).join('\n')}`);
  }
  return r.stdout;
}

/** Wall time (ms) of one command that must succeed. */
function timed(cmd: string, args: readonly string[], o: RunOpts = {}): number {
  const t0 = process.hrtime.bigint();
  must(cmd, args, o);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Wall time (ms) and CPU time (user + sys, ms, of the command and its children) via /usr/bin/time. */
function timedCpu(cmd: string, args: readonly string[], o: RunOpts = {}): { ms: number; cpuMs: number } {
  const f = path.join(ROOT, `time-${process.pid}.txt`);
  const t0 = process.hrtime.bigint();
  must('/usr/bin/time', ['-f', '%U %S', '-o', f, cmd, ...args], o);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const [u, sys] = fs.readFileSync(f, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
  fs.rmSync(f, { force: true });
  return { ms, cpuMs: ((u ?? NaN) + (sys ?? NaN)) * 1000 };
}

function tspod(dir: string, args: readonly string[]): string[] {
  return [`--dir=${dir}`, ...args];
}

function version(cmd: string, args: string[]): string {
  try {
    const r = spawnSync(cmd, args, { encoding: 'utf8', env: ENV });
    return ((r.stdout || r.stderr || '').trim().split('\n')[0] ?? '').trim() || 'unknown';
  } catch {
    return 'unavailable';
  }
}

/** Disk use in bytes (du counts a hardlinked inode once per invocation). */
function du(...paths: string[]): number {
  const out = must('du', ['-s', '-c', '-B1', ...paths]);
  const total = out.trim().split('\n').pop() ?? '0';
  return Number(total.split(/\s+/)[0]);
}

function sync(): void {
  spawnSync('sync', [], { stdio: 'ignore' });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ------------------------------------------------------------------ podman and runc, isolated

class Podman {
  readonly dir: string;
  readonly base: string[];
  constructor(name: string) {
    this.dir = scratch(`podman-${name}`);
    this.base = [
      '--root', path.join(this.dir, 'root'),
      '--runroot', path.join(this.dir, 'run'),
      '--tmpdir', path.join(this.dir, 'tmp'),
      '--storage-driver', 'overlay',
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'file',
      '--runtime', 'runc',
    ];
    podmans.add(this);
  }
  args(...a: string[]): string[] {
    return [...this.base, ...a];
  }
  /** Removes every container and image and the storage (sync: used from exit hooks too). */
  reset(): void {
    if (!fs.existsSync(this.dir)) return;
    spawnSync('podman', this.args('rm', '-a', '-f', '-t', '0'), { stdio: 'ignore', env: ENV, timeout: 60_000 });
    spawnSync('podman', this.args('system', 'reset', '-f'), { stdio: 'ignore', env: ENV, timeout: 120_000 });
    unmountAll([this.dir]);
    removeTreeSafely(this.dir);
    podmans.delete(this);
  }
}

/**
 * podman's default rlimits (nofile and nproc 1048576) cannot be set here: the
 * sandbox has no CAP_SYS_RESOURCE and runc fails with EPERM. Explicit limits
 * below the hard ones work; they change nothing measurable.
 */
const PODMAN_ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];

const podmans = new Set<Podman>();
const tspodDirs = new Set<string>();
const runcRoots = new Set<string>();
const children = new Set<ChildProcess>();

function newTspodDir(name: string): string {
  const d = scratch(`tspod-${name}`);
  tspodDirs.add(d);
  return d;
}

function removeTspodDir(d: string): void {
  if (!fs.existsSync(d)) return;
  if (fs.existsSync(path.join(d, 'pods'))) {
    spawnSync(TSPOD_BIN, tspod(d, ['gc', '--grace-period=0s', '--expire-prepared=0s']), { stdio: 'ignore', env: ENV, timeout: 120_000 });
  }
  const procs = processesReferencing([d]);
  if (procs.length) killPids(procs.map((p) => p.pid));
  unmountAll([d]);
  removeTreeSafely(d);
  tspodDirs.delete(d);
}

function removeRuncRoot(r: string): void {
  const l = spawnSync('runc', ['--root', r, 'list', '-q'], { encoding: 'utf8', env: ENV });
  for (const id of (l.stdout ?? '').split('\n').filter(Boolean)) spawnSync('runc', ['--root', r, 'delete', '-f', id], { stdio: 'ignore', env: ENV });
  runcRoots.delete(r);
}

let cleanedUp = false;
/** Everything this run made, whatever state it is in. Synchronous (runs from exit hooks). */
function cleanup(): void {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of [...tspodDirs]) {
    try {
      removeTspodDir(d);
    } catch (e) {
      log(`cleanup: ${d}: ${String(e)}`);
    }
  }
  for (const p of [...podmans]) {
    try {
      p.reset();
    } catch (e) {
      log(`cleanup: ${p.dir}: ${String(e)}`);
    }
  }
  for (const r of [...runcRoots]) removeRuncRoot(r);
  removePodmanNetworkState();
  const procs = processesReferencing([ROOT]);
  if (procs.length) {
    log(`cleanup: killing ${procs.length} leftover process(es): ${procs.map((p) => `${p.pid} ${p.cmdline}`).join('; ')}`);
    killPids(procs.map((p) => p.pid));
  }
  const left = unmountAll([ROOT]);
  if (left.length) log(`cleanup: still mounted: ${left.map((m) => m.mountPoint).join(', ')}`);
  try {
    removeTreeSafely(ROOT);
  } catch (e) {
    log(`cleanup: ${String(e)}`);
  }
  fs.rmSync(SNAPSHOT, { recursive: true, force: true });
}
onExit(cleanup);

/**
 * podman's default network (its CNI bridge here) leaves host state behind after
 * its last container: the cni-podman0 bridge, the CNI firewall plugin's
 * CNI-FORWARD/CNI-ADMIN chains (hooked from FORWARD) and host-local's
 * directory. What the benchmark made is removed; what was there before stays.
 */
const HAD_PODMAN_BRIDGE = fs.existsSync('/sys/class/net/cni-podman0');
const HAD_CNI_FORWARD = spawnSync('iptables', ['-S', 'CNI-FORWARD'], { stdio: 'ignore' }).status === 0;
const PODMAN_LEASES = '/var/lib/cni/networks/podman';
const HAD_PODMAN_LEASES = fs.existsSync(PODMAN_LEASES);
function removePodmanNetworkState(): void {
  if (!HAD_PODMAN_LEASES) fs.rmSync(PODMAN_LEASES, { recursive: true, force: true });
  if (!HAD_PODMAN_BRIDGE && fs.existsSync('/sys/class/net/cni-podman0')) spawnSync('ip', ['link', 'delete', 'cni-podman0'], { stdio: 'ignore' });
  if (!HAD_CNI_FORWARD && spawnSync('iptables', ['-S', 'CNI-FORWARD'], { stdio: 'ignore' }).status === 0) {
    spawnSync('iptables', ['-D', 'FORWARD', '-m', 'comment', '--comment', 'CNI firewall plugin rules', '-j', 'CNI-FORWARD'], { stdio: 'ignore' });
    for (const chain of ['CNI-FORWARD', 'CNI-ADMIN']) {
      spawnSync('iptables', ['-F', chain], { stdio: 'ignore' });
      spawnSync('iptables', ['-X', chain], { stdio: 'ignore' });
    }
  }
}

// ------------------------------------------------------------------ statistics

interface Stat {
  n: number;
  median: number;
  min: number;
  max: number;
  samples: number[];
}

function stat(samples: number[]): Stat {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const median = n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return { n, median, min: s[0] ?? NaN, max: s[n - 1] ?? NaN, samples };
}

interface Variant {
  key: string;
  label: string;
  /** Untimed preparation, the timed part (returns ms), untimed cleanup: all in here. */
  step(rep: number): number | Promise<number>;
}

/** A B C A B C …: one warm-up round (not recorded), then `reps` recorded rounds. */
async function alternate(title: string, variants: Variant[], reps: number, warmup: boolean): Promise<Record<string, Stat>> {
  const samples: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v.key, []]));
  for (let rep = warmup ? -1 : 0; rep < reps; rep++) {
    for (const v of variants) {
      const ms = await v.step(rep);
      if (rep >= 0) samples[v.key]!.push(ms);
      log(`${title} ${rep < 0 ? 'warm-up' : `${rep + 1}/${reps}`} ${v.key}: ${fmtMs(ms)}`);
    }
  }
  return Object.fromEntries(variants.map((v) => [v.key, stat(samples[v.key]!)]));
}

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 100 ? 1 : 0)} ms`;
}

function fmtStat(s: Stat | undefined, fmt = fmtMs): string {
  if (!s || s.n === 0) return 'n/a';
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}

function fmtBytes(b: number): string {
  if (!Number.isFinite(b)) return 'n/a';
  if (b >= 1 << 30) return `${(b / (1 << 30)).toFixed(2)} GiB`;
  if (b >= 1 << 20) return `${(b / (1 << 20)).toFixed(1)} MiB`;
  if (b >= 1 << 10) return `${(b / (1 << 10)).toFixed(0)} KiB`;
  return `${b} B`;
}

function fmtKb(kb: number): string {
  if (!Number.isFinite(kb)) return 'n/a';
  return kb >= 1024 ? `${(kb / 1024).toFixed(2)} MiB` : `${Math.round(kb)} KiB`;
}

function ratio(a: Stat | undefined, b: Stat | undefined): number {
  return a && b && b.median > 0 ? a.median / b.median : NaN;
}

function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}×` : 'n/a';
}

// ------------------------------------------------------------------ results

interface Results {
  date: string;
  machine: Record<string, string>;
  environment: Record<string, string>;
  options: Omit<Options, 'only'> & { only: string[] };
  images: Record<string, unknown>;
  fetch?: Record<string, Stat>;
  /** CPU time (user + sys) of each fetch, from /usr/bin/time. */
  fetchCpu?: Record<string, Stat>;
  fetchProfile?: FetchProfile;
  disk?: Record<string, unknown>;
  start?: Record<string, Stat>;
  network?: Record<string, Stat>;
  prepare?: Record<string, Stat>;
  memory?: Record<string, unknown>;
  breakdown?: { segments: Record<string, Stat>; order: string[] };
  targets: Array<{ issue: number; target: string; measured: string; met: boolean | null }>;
  notes: string[];
  errors: string[];
}

function launcherUnsetsCaCerts(): boolean {
  try {
    const head = fs.readFileSync(fs.realpathSync(TSPOD_BIN), 'utf8').slice(0, 4096);
    return head.startsWith('#!/bin/sh') && /unset NODE_EXTRA_CA_CERTS/.test(head);
  } catch {
    return false;
  }
}

let tspodVersion = '?';

function machineFacts(): Record<string, string> {
  const cpu = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown';
  const fsType = spawnSync('stat', ['-f', '-c', '%T', ROOT], { encoding: 'utf8' }).stdout.trim();
  const cg = fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2 (unified)' : 'v1 / hybrid';
  const git = spawnSync('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout.trim() ? ' (working tree modified)' : '';
  return {
    host: os.hostname(),
    nproc: String(os.availableParallelism?.() ?? os.cpus().length),
    cpu,
    memory: fmtBytes(os.totalmem()),
    kernel: os.release(),
    distro: (fs.readFileSync('/etc/os-release', 'utf8').match(/PRETTY_NAME="?([^"\n]*)/)?.[1] ?? 'unknown'),
    'scratch filesystem': `${ROOT.split('/').slice(0, 2).join('/')} (${fsType})`,
    cgroups: cg,
    node: version('node', ['--version']),
    podman: version('podman', ['--version']),
    conmon: version('conmon', ['--version']),
    runc: version('runc', ['--version']),
    skopeo: version('skopeo', ['--version']),
    umoci: version('umoci', ['--version']),
    'docker-registry': version('/usr/bin/docker-registry', ['--version']),
    tspod: `${tspodVersion} — HEAD ${git}${dirty}; bin/ built ${fs.statSync(REPO_TSPOD_BIN).mtime.toISOString()}, copied for this run`,
    'load average at start': os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

// ------------------------------------------------------------------ images

interface Images {
  reg: Registry;
  bigRef: string;
  derivedRef: string;
  busyboxRef: string;
  multiRef: string;
  busyboxPlusRef: string;
  bigLayers: number[];
  bigUnpacked: number;
}

/** `big` plus one small layer: an image that shares all of big's layers. */
function makeDerivedLayout(): string {
  const d = scratch('derived');
  const layout = path.join(d, 'layout');
  // Blobs are immutable: a hardlinked copy of the layout is safe for umoci to add to.
  if (spawnSync('cp', ['-al', BIG_LAYOUT, layout]).status !== 0) must('cp', ['-a', BIG_LAYOUT, layout]);
  const src = path.join(d, 'src');
  fs.mkdirSync(path.join(src, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(src, 'etc', 'derived'), 'an image derived from big: one more small layer\n');
  must('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', src, '-cf', path.join(d, 'layer.tar'), 'etc']);
  must('umoci', ['raw', 'add-layer', '--image', `${layout}:big`, '--tag', 'derived', path.join(d, 'layer.tar')]);
  return layout;
}

async function setUpImages(): Promise<Images> {
  log('starting a loopback registry and pushing the images with skopeo');
  const reg = await startRegistry();
  const derivedLayout = makeDerivedLayout();
  const bigRef = await reg.push(`oci:${BIG_LAYOUT}:big`, 'big:latest');
  const derivedRef = await reg.push(`oci:${derivedLayout}:derived`, 'derived:latest');
  const busyboxRef = await reg.push(`oci:${OCI_LAYOUT}:busybox`, 'busybox:latest');
  const multiRef = await reg.push(`oci:${OCI_LAYOUT}:multi`, 'multi:latest');
  // index-amd64 is busybox's layer plus one small layer (/etc/platform).
  const busyboxPlusRef = await reg.push(`oci:${OCI_LAYOUT}:index-amd64`, 'busybox-plus:latest');
  const big = readLayoutImage('big', BIG_LAYOUT);
  const bigLayers = (big.manifest.layers ?? []).map((l) => l.size);
  const refRootfs = path.join(REPO_ROOT, 'fixtures', 'out', 'ref', 'big', 'rootfs');
  const bigUnpacked = fs.existsSync(refRootfs) ? du(refRootfs) : NaN;
  return { reg, bigRef, derivedRef, busyboxRef, multiRef, busyboxPlusRef, bigLayers, bigUnpacked };
}

// ------------------------------------------------------------------ issue 2: fetch

const fetchCpu: Record<string, number[]> = {};
function recordCpu(key: string, rep: number, cpuMs: number): void {
  if (rep < 0) return;
  (fetchCpu[key] ??= []).push(cpuMs);
}

async function benchFetch(img: Images, o: Options): Promise<Record<string, Stat>> {
  const variants: Variant[] = [
    {
      key: 'tspod fetch',
      label: 'tspod fetch',
      step: (rep) => {
        const d = newTspodDir('fetch');
        sync();
        const { ms, cpuMs } = timedCpu(TSPOD_BIN, tspod(d, ['fetch', '--insecure-options=http', img.bigRef]));
        recordCpu('tspod fetch', rep, cpuMs);
        removeTspodDir(d);
        sync();
        return ms;
      },
    },
    {
      key: 'podman pull',
      label: 'podman pull',
      step: (rep) => {
        const p = new Podman('pull');
        sync();
        const { ms, cpuMs } = timedCpu('podman', p.args('pull', '-q', '--tls-verify=false', img.bigRef));
        recordCpu('podman pull', rep, cpuMs);
        p.reset();
        sync();
        return ms;
      },
    },
    {
      key: 'skopeo copy + umoci raw unpack',
      label: 'skopeo copy + umoci raw unpack',
      step: (rep) => {
        const d = scratch('skopeo');
        sync();
        const a = timedCpu('skopeo', ['--policy', SKOPEO_POLICY, 'copy', '--src-tls-verify=false', img.bigRef, `oci:${d}/layout:big`]);
        const b = timedCpu('umoci', ['raw', 'unpack', '--image', `${d}/layout:big`, `${d}/rootfs`]);
        const ms = a.ms + b.ms;
        recordCpu('skopeo copy + umoci raw unpack', rep, a.cpuMs + b.cpuMs);
        removeTreeSafely(d);
        sync();
        return ms;
      },
    },
  ];
  return alternate('fetch', variants, o.fetchReps, o.warmup);
}

// ------------------------------------------------------------------ issue 2: where tspod fetch's time goes

interface FetchProfile {
  wallMs: number;
  sampledMs: number;
  /** Self time of the main thread by function, largest first. */
  top: Array<{ fn: string; ms: number; pct: number }>;
  /** This filesystem's cost of creating one small file / one directory (µs), any tool pays it. */
  createFileUs: number;
  mkdirUs: number;
  files: number;
  dirs: number;
}

/**
 * One more tspod fetch of the big image, with Node's CPU profiler on: where
 * the main thread spends its time. Plus what creating a file costs on this filesystem, for any tool.
 */
function profileFetch(img: Images): FetchProfile {
  const d = newTspodDir('profile');
  const profDir = scratch('cpuprof');
  sync();
  const t0 = process.hrtime.bigint();
  // node refuses --cpu-prof in NODE_OPTIONS: start the CLI's JS the way bin/tspod does, with the flag.
  const real = fs.realpathSync(TSPOD_BIN);
  const entry = /\.m?js$/.test(real) ? real : path.join(path.dirname(real), 'tspod-js', 'main.js');
  if (!fs.existsSync(entry)) throw new Error(`cannot find the JS entry point of ${TSPOD_BIN} (looked for ${entry})`);
  const env: NodeJS.ProcessEnv = { ...ENV };
  if (launcherUnsetsCaCerts() && env.NODE_EXTRA_CA_CERTS) {
    env.TSPOD_EXTRA_CA_CERTS = env.NODE_EXTRA_CA_CERTS;
    delete env.NODE_EXTRA_CA_CERTS;
  }
  must('node', ['--cpu-prof', `--cpu-prof-dir=${profDir}`, entry, ...tspod(d, ['fetch', '--insecure-options=http', img.bigRef])], { env });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  let files = 0;
  let dirs = 0;
  const walk = (p: string): void => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      if (e.isDirectory()) {
        dirs++;
        walk(path.join(p, e.name));
      } else if (e.isFile()) files++;
    }
  };
  walk(path.join(d, fs.readdirSync(d).includes('cas') ? 'cas' : '.'));
  removeTspodDir(d);
  const prof = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!prof) throw new Error('no .cpuprofile written (NODE_OPTIONS not passed to node?)');
  const p = JSON.parse(fs.readFileSync(path.join(profDir, prof), 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const us = p.timeDeltas[i] ?? 0;
    total += us;
    const cf = byId.get(id)?.callFrame;
    const fn = cf ? `${cf.functionName || '(anonymous)'}${cf.url ? ` (${path.basename(cf.url)})` : ''}` : '?';
    self.set(fn, (self.get(fn) ?? 0) + us);
  });
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 10)
    .map(([fn, us]) => ({ fn, ms: us / 1000, pct: (100 * us) / total }));
  // The filesystem's cost per created file and directory (synchronous, one process).
  const fsDir = scratch('fscost');
  const probe = `const fs=require('fs');const d=process.argv[1];const n=1000;const b=Buffer.alloc(4096,120);
let t=process.hrtime.bigint();for(let i=0;i<n;i++){const fd=fs.openSync(d+'/f'+i,'wx',0o644);fs.writeSync(fd,b);fs.closeSync(fd);}
const f=Number(process.hrtime.bigint()-t)/1e3/n;t=process.hrtime.bigint();for(let i=0;i<n/2;i++)fs.mkdirSync(d+'/d'+i);
console.log(f, Number(process.hrtime.bigint()-t)/1e3/(n/2));`;
  const [createFileUs, mkdirUs] = must('node', ['-e', probe, fsDir], { env: SCRUBBED_ENV }).trim().split(' ').map(Number);
  removeTreeSafely(fsDir);
  removeTreeSafely(profDir);
  return { wallMs, sampledMs: total / 1000, top, createFileUs: createFileUs ?? NaN, mkdirUs: mkdirUs ?? NaN, files, dirs };
}

// ------------------------------------------------------------------ issue 2: disk use

interface DiskPair {
  a: string;
  b: string;
  aAlone: number;
  bAlone: number;
  both: number;
}

async function benchDisk(img: Images, errors: string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const pair = (label: string, fn: () => DiskPair): void => {
    log(`disk use: ${label}`);
    try {
      out[label] = fn();
    } catch (e) {
      errors.push(`disk (${label}): ${e instanceof Error ? e.message : String(e)}`);
      log(`disk use: ${label} FAILED`);
    }
  };
  const tspodPair = (aName: string, aRef: string, bName: string, bRef: string) => (): DiskPair => {
    const fetch = (d: string, ref: string): void => void must(TSPOD_BIN, tspod(d, ['fetch', '--insecure-options=http', ref]));
    const dA = newTspodDir('disk');
    fetch(dA, aRef);
    const aAlone = du(dA);
    fetch(dA, bRef);
    const both = du(dA);
    removeTspodDir(dA);
    const dB = newTspodDir('disk');
    fetch(dB, bRef);
    const bAlone = du(dB);
    removeTspodDir(dB);
    return { a: aName, b: bName, aAlone, bAlone, both };
  };
  const podmanPair = (aName: string, aRef: string, bName: string, bRef: string) => (): DiskPair => {
    const pull = (p: Podman, ref: string): void => void must('podman', p.args('pull', '-q', '--tls-verify=false', ref));
    const pA = new Podman('disk');
    pull(pA, aRef);
    const aAlone = du(pA.dir);
    pull(pA, bRef);
    const both = du(pA.dir);
    pA.reset();
    const pB = new Podman('disk');
    pull(pB, bRef);
    const bAlone = du(pB.dir);
    pB.reset();
    return { a: aName, b: bName, aAlone, bAlone, both };
  };
  pair('tspod: big + derived', tspodPair('big', img.bigRef, 'derived', img.derivedRef));
  pair('podman: big + derived', podmanPair('big', img.bigRef, 'derived', img.derivedRef));
  pair('tspod: busybox + busybox-plus', tspodPair('busybox', img.busyboxRef, 'busybox-plus', img.busyboxPlusRef));
  pair('podman: busybox + busybox-plus', podmanPair('busybox', img.busyboxRef, 'busybox-plus', img.busyboxPlusRef));
  pair('tspod: busybox + multi', tspodPair('busybox', img.busyboxRef, 'multi', img.multiRef));
  return out;
}

// ------------------------------------------------------------------ issue 3: starts

interface PodSetup {
  dir: string;
  busyboxId: string;
  bigId: string;
  podman: Podman;
  podmanBusybox: string;
  bundle: string;
  runcRoot: string;
}

async function setUpPods(img: Images): Promise<PodSetup> {
  log('pods: fetching busybox and big into a tspod store, busybox into podman, a runc bundle');
  const dir = newTspodDir('pods');
  const idOf = (out: string): string => out.trim().split('\n').pop()!.trim();
  const busyboxId = idOf(must(TSPOD_BIN, tspod(dir, ['fetch', '--insecure-options=http', img.busyboxRef])));
  const bigId = idOf(must(TSPOD_BIN, tspod(dir, ['fetch', '--insecure-options=http', img.bigRef])));
  const podman = new Podman('run');
  const podmanBusybox = must('podman', podman.args('pull', '-q', '--tls-verify=false', img.busyboxRef)).trim();

  const b = scratch('runc');
  const bundle = path.join(b, 'bundle');
  must('umoci', ['unpack', '--image', `${OCI_LAYOUT}:busybox`, bundle]);
  const cfgPath = path.join(bundle, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8')) as { process: { terminal?: boolean; args?: string[] } };
  cfg.process.terminal = false;
  cfg.process.args = ['/bin/true'];
  fs.writeFileSync(cfgPath, JSON.stringify(cfg));
  const runcRoot = path.join(b, 'state');
  runcRoots.add(runcRoot);
  const s: PodSetup = { dir, busyboxId, bigId, podman, podmanBusybox, bundle, runcRoot };
  // The first prepare imports the default stage1 into the store: not part of any timing.
  rmPod(s, prepare(s, busyboxId));
  return s;
}

function prepare(s: PodSetup, image: string, extra: string[] = [], app: string[] = ['--exec', '/bin/true']): string {
  const out = must(TSPOD_BIN, tspod(s.dir, ['prepare', '--quiet', '--net=none', ...extra, image, ...app]));
  const uuid = out.trim().split('\n').pop()!.trim();
  if (!/^[0-9a-f-]{36}$/.test(uuid)) throw new Error(`tspod prepare printed ${JSON.stringify(out)}, not a UUID`);
  return uuid;
}

function rmPod(s: PodSetup, uuid: string): void {
  must(TSPOD_BIN, tspod(s.dir, ['rm', uuid]));
}

async function benchStart(s: PodSetup, o: Options): Promise<Record<string, Stat>> {
  const variants: Variant[] = [
    {
      key: 'tspod run-prepared',
      label: 'tspod run-prepared (busybox /bin/true, --net=none; prepare untimed)',
      step: () => {
        const uuid = prepare(s, s.busyboxId);
        const ms = timed(TSPOD_BIN, tspod(s.dir, ['run-prepared', uuid]));
        rmPod(s, uuid);
        return ms;
      },
    },
    {
      key: 'tspod run-prepared, isolation off',
      label: 'tspod --insecure-options=all-run run-prepared (no capability mask, seccomp filter, masked paths or cgroups)',
      step: () => {
        const uuid = prepare(s, s.busyboxId);
        const ms = timed(TSPOD_BIN, tspod(s.dir, ['--insecure-options=all-run', 'run-prepared', uuid]));
        rmPod(s, uuid);
        return ms;
      },
    },
    {
      key: 'podman run',
      label: 'podman run --rm --network none (busybox /bin/true)',
      step: () => timed('podman', s.podman.args('run', '--rm', '--pull=never', '--network', 'none', ...PODMAN_ULIMITS, s.podmanBusybox, '/bin/true')),
    },
    {
      key: 'tspod run',
      label: 'tspod run (prepare + run in one command; rm untimed)',
      step: () => {
        const uuidFile = path.join(s.dir, 'last-uuid');
        const ms = timed(TSPOD_BIN, tspod(s.dir, ['run', '--net=none', `--uuid-file-save=${uuidFile}`, s.busyboxId, '--exec', '/bin/true']));
        rmPod(s, fs.readFileSync(uuidFile, 'utf8').trim());
        return ms;
      },
    },
    {
      key: 'runc run',
      label: 'runc run (umoci bundle of busybox, /bin/true)',
      step: (rep) => timed('runc', ['--root', s.runcRoot, 'run', '--bundle', s.bundle, `bench-${rep + 2}`]),
    },
    {
      key: 'node -e 0',
      label: 'node -e 0 (this environment)',
      step: () => timed('node', ['-e', '0']),
    },
    {
      key: 'node -e 0 (scrubbed env)',
      label: "node -e 0 (stage1's scrubbed environment: PATH, TERM)",
      step: () => timed('node', ['-e', '0'], { env: SCRUBBED_ENV }),
    },
  ];
  return alternate('start', variants, o.startReps, o.warmup);
}

/**
 * Issue 8: the same start with a network. tspod's default network (CNI ptp +
 * host-local + masquerade, released at exit) against podman's default network
 * (its CNI bridge here: Debian 12's podman without netavark), and both with no
 * network, to show what the network itself costs each.
 */
async function benchNetwork(s: PodSetup, o: Options): Promise<Record<string, Stat>> {
  const tspodVariant = (net: string): Variant => ({
    key: `tspod run-prepared --net=${net}`,
    label: `tspod run-prepared --net=${net} (busybox /bin/true; prepare untimed)`,
    step: () => {
      const uuid = prepare(s, s.busyboxId);
      const ms = timed(TSPOD_BIN, tspod(s.dir, ['run-prepared', `--net=${net}`, uuid]));
      rmPod(s, uuid);
      return ms;
    },
  });
  const podmanVariant = (net: string | undefined): Variant => ({
    key: `podman run --rm${net ? ` --network ${net}` : ''}`,
    label: `podman run --rm --runtime runc${net ? ` --network ${net}` : ' (its default network)'} (busybox /bin/true)`,
    step: () => timed('podman', s.podman.args('run', '--rm', '--pull=never', ...(net ? ['--network', net] : []), ...PODMAN_ULIMITS, s.podmanBusybox, '/bin/true')),
  });
  return alternate('network', [tspodVariant('default'), podmanVariant(undefined), tspodVariant('none'), podmanVariant('none')], o.startReps, o.warmup);
}

async function benchPrepare(s: PodSetup, o: Options): Promise<Record<string, Stat>> {
  const variant = (key: string, id: string): Variant => ({
    key,
    label: key,
    step: () => {
      const t0 = process.hrtime.bigint();
      const uuid = prepare(s, id);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      rmPod(s, uuid);
      return ms;
    },
  });
  return alternate('prepare', [variant('prepare busybox', s.busyboxId), variant('prepare big', s.bigId)], o.prepareReps, o.warmup);
}

// ------------------------------------------------------------------ issue 3: where run-prepared's time goes

/**
 * `tspod run-prepared` under `strace -ttt -e trace=execve,exit_group` of the
 * main process only (no -f: threads and the pod's children are not traced, so
 * the overhead stays small). Every stage execs the next in the same pid, so the
 * time between two execs is the time spent in one stage.
 */
async function benchBreakdown(s: PodSetup, o: Options): Promise<{ segments: Record<string, Stat>; order: string[] }> {
  const samples = new Map<string, number[]>();
  const order: string[] = [];
  for (let rep = o.warmup ? -1 : 0; rep < o.breakdownReps; rep++) {
    const uuid = prepare(s, s.busyboxId);
    const out = path.join(ROOT, `strace-${rep + 1}.txt`);
    must('strace', ['-ttt', '-e', 'trace=execve,exit_group', '-o', out, TSPOD_BIN, ...tspod(s.dir, ['run-prepared', uuid])]);
    const events: Array<{ t: number; what: string }> = [];
    for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
      const m = /^(\d+\.\d+) (?:execve\("([^"]+)".*= 0$|(exit_group)\(|\+\+\+ (exited|killed))/.exec(line);
      if (!m) continue;
      const what = m[2] ? path.basename(m[2]) : m[3] ? 'exit_group' : 'exited';
      events.push({ t: Number(m[1]) * 1000, what });
    }
    fs.rmSync(out, { force: true });
    rmPod(s, uuid);
    if (rep < 0 || events.length < 2) continue;
    const add = (k: string, v: number): void => {
      if (!samples.has(k)) {
        samples.set(k, []);
        order.push(k);
      }
      samples.get(k)!.push(v);
    };
    // Consecutive execs of one program (e.g. PATH search retries) count as one.
    const marks = events.filter((e, i) => i === 0 || e.what !== events[i - 1]!.what);
    for (let i = 1; i < marks.length; i++) add(`${marks[i - 1]!.what} → ${marks[i]!.what}`, marks[i]!.t - marks[i - 1]!.t);
    add('total (under strace)', events.at(-1)!.t - events[0]!.t);
  }
  return { segments: Object.fromEntries(order.map((k) => [k, stat(samples.get(k)!)])), order };
}

/** What each exec-to-exec segment of run-prepared is. */
const SEGMENT_NOTES: Record<string, string> = {
  'tspod → node': 'bin/tspod (sh launcher) until it execs node',
  'node → init': "stage0: Node start-up + tspod's JS (lock, rename to run/, exec) until stage1 /init",
  'init → ld-linux-x86-64.so.2': 'stage1 /init: static launcher until it execs the shipped glibc loader',
  'ld-linux-x86-64.so.2 → tspod-helper': "stage1: Node SEA start-up + /init's JS (mounts, plan) until it execs the helper",
  'tspod-helper → exit_group': "helper: namespaces, pivot_root, the app (/bin/true) and the pod's teardown",
  'exit_group → exited': 'process exit',
};

// ------------------------------------------------------------------ issue 3: resident memory

interface ProcMem {
  pid: number;
  role: string;
  exe: string;
  cmdline: string;
  rssKb: number;
  pssKb: number;
}

function procStat(pid: number): { ppid: number } | undefined {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}

function descendants(root: number): number[] {
  const kids = new Map<number, number[]>();
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const st = procStat(Number(n));
    if (!st) continue;
    const l = kids.get(st.ppid) ?? [];
    l.push(Number(n));
    kids.set(st.ppid, l);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of kids.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

function readMem(pid: number, role: string): ProcMem {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? NaN);
  let pssKb = NaN;
  try {
    pssKb = Number(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m)?.[1] ?? NaN);
  } catch {
    // no smaps_rollup on this kernel
  }
  const exe = exeOf(pid);
  const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  return { pid, role, exe, cmdline, rssKb, pssKb };
}

function exeOf(pid: number): string {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '?';
  }
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

interface MemSample {
  overhead: ProcMem[];
  app: ProcMem[];
  rssKb: number;
  pssKb: number;
}

async function tspodPodMemory(s: PodSetup): Promise<MemSample> {
  const uuid = prepare(s, s.busyboxId, [], ['--exec', '/bin/sleep', '--', '30']);
  const child = spawn(TSPOD_BIN, tspod(s.dir, ['run-prepared', uuid]), { env: ENV, cwd: ROOT, stdio: 'ignore' });
  children.add(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    const pidFile = path.join(s.dir, 'pods', 'run', uuid, 'pid');
    const pid1 = await waitFor('the pod pid file', () => {
      try {
        const v = Number(fs.readFileSync(pidFile, 'utf8').trim());
        return v > 0 ? v : undefined;
      } catch {
        return undefined;
      }
    });
    // The app (sleep) is a child of the pod's pid 1 once it has started.
    await waitFor('the app to start', () => (descendants(pid1).some((p) => exeOf(p).endsWith('busybox')) ? true : undefined));
    await sleep(500);
    const outer = child.pid!;
    const all = [outer, ...descendants(outer)];
    const overhead: ProcMem[] = [];
    const app: ProcMem[] = [];
    for (const pid of all) {
      const role = pid === outer ? 'outer helper (was tspod → stage1 /init)' : pid === pid1 ? 'pod pid 1 (helper init)' : 'app';
      const m = readMem(pid, role);
      (role === 'app' ? app : overhead).push(m);
    }
    if (!all.includes(pid1)) throw new Error(`the pod's pid 1 (${pid1}) is not below the process tspod started (${outer})`);
    return { overhead, app, rssKb: sum(overhead.map((m) => m.rssKb)), pssKb: sum(overhead.map((m) => m.pssKb)) };
  } finally {
    spawnSync(TSPOD_BIN, tspod(s.dir, ['stop', '--force', uuid]), { stdio: 'ignore', env: ENV, timeout: 30_000 });
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
    children.delete(child);
    spawnSync(TSPOD_BIN, tspod(s.dir, ['rm', uuid]), { stdio: 'ignore', env: ENV });
  }
}

async function podmanMemory(s: PodSetup, rep: number): Promise<MemSample> {
  const name = `bench-mem-${rep}-${process.pid}`;
  const cid = must('podman', s.podman.args('run', '-d', '--pull=never', '--name', name, '--network', 'none', ...PODMAN_ULIMITS, s.podmanBusybox, '/bin/sleep', '30')).trim();
  try {
    const [conmon, pid] = must('podman', s.podman.args('inspect', '-f', '{{.State.ConmonPid}} {{.State.Pid}}', cid)).trim().split(' ').map(Number);
    await sleep(500);
    const overhead = [readMem(conmon!, 'conmon')];
    const app = [readMem(pid!, 'app')];
    return { overhead, app, rssKb: overhead[0]!.rssKb, pssKb: overhead[0]!.pssKb };
  } finally {
    spawnSync('podman', s.podman.args('rm', '-f', '-t', '0', cid), { stdio: 'ignore', env: ENV, timeout: 60_000 });
  }
}

/** For scale: what one idle Node process costs (stage0 does not stay; this is what it would cost if it did). */
async function idleNodeMemory(): Promise<MemSample> {
  const child = spawn('node', ['-e', 'setTimeout(() => {}, 30000)'], { env: SCRUBBED_ENV, stdio: 'ignore' });
  children.add(child);
  try {
    await sleep(700);
    const m = readMem(child.pid!, 'idle node');
    return { overhead: [m], app: [], rssKb: m.rssKb, pssKb: m.pssKb };
  } finally {
    child.kill('SIGKILL');
    children.delete(child);
  }
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

async function benchMemory(s: PodSetup, o: Options): Promise<Record<string, unknown>> {
  const samples: Record<string, MemSample[]> = { tspod: [], podman: [], node: [] };
  for (let rep = 0; rep < o.memoryReps; rep++) {
    samples.tspod!.push(await tspodPodMemory(s));
    samples.podman!.push(await podmanMemory(s, rep));
    samples.node!.push(await idleNodeMemory());
    log(`memory ${rep + 1}/${o.memoryReps}: tspod ${fmtKb(samples.tspod!.at(-1)!.rssKb)} RSS, conmon ${fmtKb(samples.podman!.at(-1)!.rssKb)} RSS`);
  }
  const summary = (xs: MemSample[]) => ({
    rssKb: stat(xs.map((x) => x.rssKb)),
    pssKb: stat(xs.map((x) => x.pssKb)),
    processes: xs.at(-1)!.overhead.map(({ role, exe, rssKb, pssKb }) => ({ role, exe, rssKb, pssKb })),
    app: xs.at(-1)!.app.map(({ role, exe, cmdline, rssKb, pssKb }) => ({ role, exe, cmdline, rssKb, pssKb })),
  });
  return { tspod: summary(samples.tspod!), podman: summary(samples.podman!), node: summary(samples.node!) };
}

// ------------------------------------------------------------------ report

type MemSummary = { rssKb: Stat; pssKb: Stat; processes: Array<{ role: string; exe: string; rssKb: number; pssKb: number }>; app: Array<{ role: string; exe: string; cmdline?: string; rssKb: number; pssKb: number }> };

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function report(r: Results): string {
  const md: string[] = [];
  md.push(`# tspod benchmarks — ${r.date}`, '');
  md.push('## Machine', '', table(['', ''], Object.entries(r.machine).map(([k, v]) => [k, v])), '');
  md.push('## Environment (the same for every tool)', '', table(['', ''], Object.entries(r.environment).map(([k, v]) => [k, v])), '');
  md.push(
    '## Images',
    '',
    table(['', ''], Object.entries(r.images).map(([k, v]) => [k, String(v)])),
    '',
  );
  if (r.fetch) {
    const f = r.fetch;
    md.push(
      `## Issue 2 — fetch of the big image from the loopback registry into empty storage (${f['tspod fetch']?.n ?? 0} alternating repetitions)`,
      '',
      table(
        ['tool', 'wall, median (min–max)', 'tspod ÷ this', 'CPU user+sys, median'],
        Object.entries(f).map(([k, s]) => [k, fmtStat(s), k === 'tspod fetch' ? '—' : fmtRatio(ratio(f['tspod fetch'], s)), fmtMs(r.fetchCpu?.[k]?.median ?? NaN)]),
      ),
      '',
    );
  }
  if (r.fetchProfile) {
    const fp = r.fetchProfile;
    md.push(
      `## Issue 2 — where tspod fetch's time goes (one fetch under \`node --cpu-prof\`: ${fmtMs(fp.wallMs)} wall, ${fmtMs(fp.sampledMs)} sampled on the main thread)`,
      '',
      table(['main thread, self time', 'ms', 'share'], fp.top.map((t) => [`\`${t.fn}\``, fp.top.length ? t.ms.toFixed(0) : '', `${t.pct.toFixed(1)} %`])),
      '',
      `The stored image has ${fp.files} files and ${fp.dirs} directories. On this filesystem, creating one 4 KiB file costs ` +
        `${fp.createFileUs.toFixed(0)} µs and one directory ${fp.mkdirUs.toFixed(0)} µs (a synchronous loop in one process), whichever tool does it.`,
      '',
    );
  }
  if (r.disk) {
    const rows = Object.entries(r.disk).map(([k, v]) => {
      const d = v as DiskPair;
      const sumAlone = d.aAlone + d.bAlone;
      return [k, fmtBytes(d.aAlone), fmtBytes(d.bAlone), fmtBytes(sumAlone), fmtBytes(d.both), `${((d.both / sumAlone) * 100).toFixed(0)} %`];
    });
    md.push(
      '## Issue 2 — disk use (du) of a store holding two images that share layers',
      '',
      table(['store', 'first alone', 'second alone', 'sum of the two', 'both in one store', 'both ÷ sum'], rows),
      '',
    );
  }
  if (r.start) {
    const s = r.start;
    md.push(
      `## Issue 3 — start of a busybox /bin/true pod/container (${s['tspod run-prepared']?.n ?? 0} alternating repetitions)`,
      '',
      table(
        ['command', 'median (min–max)', 'tspod ÷ this'],
        Object.entries(s).map(([k, st]) => [k, fmtStat(st), k === 'tspod run-prepared' ? '—' : fmtRatio(ratio(s['tspod run-prepared'], st))]),
      ),
      '',
    );
  }
  if (r.network) {
    const n = r.network;
    const d = n['tspod run-prepared --net=default'];
    md.push(
      `## Issue 8 — start with a network: busybox /bin/true (${d?.n ?? 0} alternating repetitions)`,
      '',
      table(
        ['command', 'median (min–max)', 'tspod --net=default ÷ this'],
        Object.entries(n).map(([k, st]) => [k, fmtStat(st), k === 'tspod run-prepared --net=default' ? '—' : fmtRatio(ratio(d, st))]),
      ),
      '',
      `the network's own cost: tspod ${fmtMs((d?.median ?? NaN) - (n['tspod run-prepared --net=none']?.median ?? NaN))}, podman ${fmtMs((n['podman run --rm']?.median ?? NaN) - (n['podman run --rm --network none']?.median ?? NaN))}`,
      '',
    );
  }
  if (r.prepare) {
    const p = r.prepare;
    md.push(
      `## Issue 3 — tspod prepare, busybox (2 MB) vs big (~180 MB) (${p['prepare busybox']?.n ?? 0} alternating repetitions)`,
      '',
      table(['command', 'median (min–max)'], Object.entries(p).map(([k, st]) => [k, fmtStat(st)])),
      '',
      `big ÷ busybox: ${fmtRatio(ratio(p['prepare big'], p['prepare busybox']))}`,
      '',
    );
  }
  if (r.memory) {
    const m = r.memory as Record<string, MemSummary>;
    const rows: string[][] = [];
    for (const [who, label] of [['tspod', 'tspod pod'], ['podman', 'podman container'], ['node', 'for scale: one idle node process']] as const) {
      const x = m[who];
      if (!x) continue;
      for (const p of x.processes) rows.push([label, p.role, p.exe.startsWith(ROOT) ? `<store>/…/${p.exe.split('/').slice(-2).join('/')}` : p.exe, fmtKb(p.rssKb), fmtKb(p.pssKb)]);
      if (who !== 'node') rows.push([label, '**total per pod**', '', `**${fmtStat(x.rssKb, fmtKb)}**`, `**${fmtStat(x.pssKb, fmtKb)}**`]);
    }
    md.push(
      '## Issue 3 — resident memory of the host processes that stay per running pod (app: `sleep 30`, not counted)',
      '',
      table(['', 'process', 'executable', 'RSS (VmRSS)', 'PSS (smaps_rollup)'], rows),
      '',
    );
  }
  if (r.breakdown) {
    const b = r.breakdown;
    md.push(
      `## Issue 3 — where tspod run-prepared's time goes (strace of the exec chain, ${b.segments['total (under strace)']?.n ?? 0} repetitions)`,
      '',
      table(['segment', 'what', 'median (min–max)'], b.order.map((k) => [k, SEGMENT_NOTES[k] ?? '', fmtStat(b.segments[k])])),
      '',
    );
  }
  if (r.targets.length) {
    md.push('## Targets', '', table(['issue', 'target', 'measured', 'met'], r.targets.map((t) => [`#${t.issue}`, t.target, t.measured, t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'])), '');
  }
  if (r.notes.length) md.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  if (r.errors.length) md.push('## Errors', '', ...r.errors.map((e) => `- ${e.replace(/\n/g, ' ⏎ ')}`), '');
  return md.join('\n');
}

function targets(r: Results): Results['targets'] {
  const t: Results['targets'] = [];
  if (r.fetch) {
    const x = ratio(r.fetch['tspod fetch'], r.fetch['podman pull']);
    t.push({ issue: 2, target: 'tspod fetch faster than podman pull (big image)', measured: `${fmtMs(r.fetch['tspod fetch']!.median)} vs ${fmtMs(r.fetch['podman pull']!.median)} (${fmtRatio(x)})`, met: Number.isFinite(x) ? x < 1 : null });
  }
  if (r.start) {
    const x = ratio(r.start['tspod run-prepared'], r.start['podman run']);
    t.push({ issue: 3, target: 'pods start faster than podman containers', measured: `${fmtMs(r.start['tspod run-prepared']!.median)} vs ${fmtMs(r.start['podman run']!.median)} (${fmtRatio(x)})`, met: Number.isFinite(x) ? x < 1 : null });
    const on = r.start['tspod run-prepared'];
    const off = r.start['tspod run-prepared, isolation off'];
    if (on && off) {
      const cost = on.median - off.median;
      t.push({ issue: 10, target: 'default isolation costs under 10 ms per start', measured: `${fmtMs(on.median)} vs ${fmtMs(off.median)} with --insecure-options=all-run (${cost >= 0 ? '+' : ''}${fmtMs(cost)})`, met: cost < 10 });
    }
  }
  if (r.network) {
    const x = ratio(r.network['tspod run-prepared --net=default'], r.network['podman run --rm']);
    t.push({ issue: 8, target: 'a pod with the default network starts in under half of podman run --rm (its default network)', measured: `${fmtMs(r.network['tspod run-prepared --net=default']!.median)} vs ${fmtMs(r.network['podman run --rm']!.median)} (${fmtRatio(x)})`, met: Number.isFinite(x) ? x < 0.5 : null });
  }
  if (r.prepare) {
    const x = ratio(r.prepare['prepare big'], r.prepare['prepare busybox']);
    t.push({ issue: 3, target: 'prepare of the big image within 1.2× of busybox', measured: `${fmtMs(r.prepare['prepare big']!.median)} vs ${fmtMs(r.prepare['prepare busybox']!.median)} (${fmtRatio(x)})`, met: Number.isFinite(x) ? x <= 1.2 : null });
  }
  if (r.memory) {
    const m = (r.memory as Record<string, MemSummary>).tspod;
    if (m) t.push({ issue: 3, target: 'resident cost per pod under 1 MB', measured: `RSS ${fmtKb(m.rssKb.median)}, PSS ${fmtKb(m.pssKb.median)}`, met: m.rssKb.median < 1024 });
  }
  return t;
}

// ------------------------------------------------------------------ main

async function main(): Promise<number> {
  const o = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  if (!fs.existsSync(REPO_TSPOD_BIN)) throw new Error(`${REPO_TSPOD_BIN} is missing: run make`);
  ensureFixtures();
  tspodVersion = snapshotCli();
  // setUpImages pushes the big image (and one derived from it) whatever the parts chosen.
  ensureBigFixture();

  const r: Results = {
    date: new Date().toISOString(),
    machine: machineFacts(),
    environment: {
      NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS
        ? `set (${process.env.NODE_EXTRA_CA_CERTS}); passed to every tool as is` +
          (launcherUnsetsCaCerts() ? " — bin/tspod's sh launcher moves it aside before starting node (tspod adds the certificates itself for TLS)" : ' — every node start loads it, tspod\'s stage0 included')
        : 'unset',
      NODE_OPTIONS: process.env.NODE_OPTIONS ? `set (${process.env.NODE_OPTIONS})` : 'unset',
      'stage1 environment': 'stage0 scrubs it to PATH (+TERM): the SEA stage1 starts without NODE_EXTRA_CA_CERTS',
    },
    options: { ...o, only: [...o.only] },
    images: {},
    targets: [],
    notes: [
      'Timings are wall-clock times of the whole command as a user runs it, measured from this Node process (spawnSync); repetitions alternate between the tools (A B C A B C …), each series starts with one unrecorded warm-up round.',
      'Each fetch repetition starts from empty storage for every tool (a new tspod --dir, a new podman --root/--runroot, a new OCI layout directory) and removes it afterwards; `sync` runs (untimed) before and after each one.',
      `podman runs with its own --root/--runroot/--tmpdir, --storage-driver overlay, --cgroup-manager cgroupfs, --events-backend file, --runtime runc; containers get ${PODMAN_ULIMITS.join(' ')} because podman's default rlimits (1048576) need CAP_SYS_RESOURCE, which this sandbox lacks.`,
      'tspod run-prepared: each repetition prepares a fresh pod first (untimed) and removes it afterwards (untimed).',
      'tspod runs from a copy of bin/ made at the start of the run (build/bench-bin-PID/bin/tspod, removed at the end), so that a rebuild of the tree during the run cannot change what is measured.',
    ],
    errors: [],
  };

  let img: Images | undefined;
  let pods: PodSetup | undefined;
  const part = async (name: string, fn: () => Promise<void>): Promise<void> => {
    if (!o.only.has(name)) return;
    try {
      await fn();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      r.errors.push(`${name}: ${msg}`);
      log(`${name} FAILED: ${msg}`);
    }
  };
  try {
    img = await setUpImages();
    const images = img;
    r.images = {
      'big (registry: big:latest)': `${images.bigLayers.length} layers, ${fmtBytes(sum(images.bigLayers))} compressed (${images.bigLayers.map(fmtBytes).join(' + ')}), ${fmtBytes(images.bigUnpacked)} unpacked (du of umoci's unpack)`,
      'derived (registry: derived:latest)': "big's 3 layers + 1 small layer (umoci raw add-layer)",
      'busybox (registry: busybox:latest)': '1 layer, busybox-static (fixtures/build.sh)',
      'busybox-plus (registry: busybox-plus:latest)': "busybox's layer + 1 small layer (the fixtures' index-amd64 image)",
      'multi (registry: multi:latest)': "busybox's layer + 3 layers with whiteouts (fixtures/build.sh)",
      registry: `Debian docker-registry on ${images.reg.host}, plain HTTP`,
    };
    await part('fetch', async () => {
      r.fetch = await benchFetch(images, o);
      r.fetchCpu = Object.fromEntries(Object.entries(fetchCpu).map(([k, v]) => [k, stat(v)]));
    });
    await part('profile', async () => {
      log('profiling one tspod fetch (node --cpu-prof)');
      r.fetchProfile = profileFetch(images);
    });
    await part('disk', async () => {
      r.disk = await benchDisk(images, r.errors);
    });
    if (['start', 'network', 'prepare', 'memory', 'breakdown'].some((p) => o.only.has(p))) {
      try {
        pods = await setUpPods(images);
      } catch (e) {
        r.errors.push(`pod setup: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const ps = pods;
    if (ps) {
      await part('start', async () => {
        r.start = await benchStart(ps, o);
      });
      await part('network', async () => {
        r.network = await benchNetwork(ps, o);
      });
      await part('prepare', async () => {
        r.prepare = await benchPrepare(ps, o);
      });
      await part('memory', async () => {
        r.memory = await benchMemory(ps, o);
      });
      await part('breakdown', async () => {
        r.breakdown = await benchBreakdown(ps, o);
      });
    }
  } finally {
    if (img) await img.reg.stop().catch(() => undefined);
    cleanup();
  }
  r.machine['load average at end'] = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  r.machine['total bench time'] = `${((Date.now() - t0) / 1000).toFixed(0)} s`;
  const leftMounts = mountsUnder([ROOT]);
  if (leftMounts.length) r.errors.push(`mounts left under ${ROOT}: ${leftMounts.map((m) => m.mountPoint).join(', ')}`);
  if (fs.existsSync(ROOT)) r.errors.push(`${ROOT} could not be removed`);
  r.targets = targets(r);

  const md = report(r);
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'results.md'), md + '\n');
  fs.writeFileSync(path.join(OUT_DIR, 'results.json'), JSON.stringify(r, null, 2) + '\n');
  process.stdout.write(md + '\n');
  log(`wrote ${path.relative(process.cwd(), path.join(OUT_DIR, 'results.md'))} and results.json`);
  return r.errors.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    cleanup();
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
