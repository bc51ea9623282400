// Running the real CLI (bin/tspod) against a per-test data directory.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { REPO_ROOT, makeTempDir } from './paths.js';
import { onExit, type AfterHost } from './cleanup.js';
import { killPids, mountsUnder, podCgroups, podUuids, processesReferencing, removeCgroups, removeTreeSafely, unmountAll } from './sys.js';
import { recordLeak } from './leaks.js';

/** The CLI as a user runs it. */
export const TSPOD_BIN = path.join(REPO_ROOT, 'bin', 'tspod');

export interface RunResult {
  /** Exit code; 128+N when killed by signal N (as a shell reports it). */
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The argv that ran (for messages). */
  argv: string[];
}

export interface RunOptions {
  /** The --dir to pass (put first); null for none. */
  dir?: string | null;
  /** Extra environment (merged over a copy of this process's, less NODE_OPTIONS and node:test's variables). */
  env?: Record<string, string | undefined>;
  /** Replace the environment entirely (PATH is still added if missing). */
  cleanEnv?: Record<string, string>;
  /** Written to stdin, which is then closed (default: stdin is /dev/null). */
  input?: string | Buffer;
  cwd?: string;
  /** Killed with SIGKILL after this long (default 120 s). */
  timeoutMs?: number;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

function childEnv(opts: RunOptions): NodeJS.ProcessEnv {
  const nodeDir = path.dirname(process.execPath);
  let env: NodeJS.ProcessEnv;
  if (opts.cleanEnv) {
    env = { ...opts.cleanEnv };
  } else {
    env = { ...process.env };
    for (const k of Object.keys(env)) if (k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST') || k === 'NODE_CHANNEL_FD') delete env[k];
    for (const [k, v] of Object.entries(opts.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
  }
  const p = env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
  if (!p.split(':').includes(nodeDir)) env.PATH = `${p}:${nodeDir}`;
  return env;
}

/** Runs `bin/tspod [--dir=DIR] ARGS…` and collects its output. Never rejects for a non-zero exit. */
export function runTspod(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = [...(opts.dir ? [`--dir=${opts.dir}`] : []), ...args];
  return new Promise((resolve, reject) => {
    const p = spawn(TSPOD_BIN, argv, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: childEnv(opts),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout!.on('data', (c: Buffer) => out.push(c));
    p.stderr!.on('data', (c: Buffer) => err.push(c));
    if (opts.input !== undefined) {
      p.stdin!.on('error', () => undefined);
      p.stdin!.end(opts.input);
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    const unregister = onExit(() => p.kill('SIGKILL'));
    p.on('error', (e) => {
      clearTimeout(timer);
      unregister();
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      unregister();
      resolve({
        code: code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0),
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        argv: [TSPOD_BIN, ...argv],
      });
    });
  });
}

/** A one-line description of a result, for assertion messages. */
export function describeResult(r: RunResult): string {
  const tail = (s: string): string => (s.length > 4000 ? `…${s.slice(-4000)}` : s);
  return `${r.argv.join(' ')} exited ${r.code}${r.timedOut ? ' (timed out)' : ''}\n--- stdout\n${tail(r.stdout)}--- stderr\n${tail(r.stderr)}`;
}

export interface RemoveOptions {
  /** Run `tspod gc --grace-period=0s --expire-prepared=0s` first, as a user cleaning up would (default true). */
  gc?: boolean;
}

export interface DataDir {
  /** Absolute path: pass as --dir. */
  path: string;
  /** runTspod with this --dir. */
  tspod(args: readonly string[], opts?: Omit<RunOptions, 'dir'>): Promise<RunResult>;
  /**
   * Cleans up: optional gc, then anything still running from or mounted under
   * the directory is killed/unmounted (and recorded as a leak, which fails the
   * suite), then the directory is removed.
   */
  remove(opts?: RemoveOptions): Promise<void>;
}

/**
 * A fresh tspod data directory under this run's scratch root (test/data/…).
 * With a test context, removal is registered with its after hook; in any case
 * it is torn down when the process exits.
 */
export function makeDataDir(t?: AfterHost, name = 'tspod'): DataDir {
  const dir = makeTempDir(name);
  let removed = false;

  const teardown = (gcDone: boolean): void => {
    const gc = (): void => {
      if (!gcDone && fs.existsSync(path.join(dir, 'pods'))) runTspodSync(['gc', '--grace-period=0s', '--expire-prepared=0s'], { dir });
      gcDone = true;
    };
    const procs = processesReferencing([dir]);
    if (procs.length) {
      recordLeak('process', `${procs.length} process(es) still running from ${dir} at teardown: ${procs.map((p) => `${p.pid} (${p.why}) ${p.cmdline}`).join('; ')}`);
      killPids(procs.map((p) => p.pid));
      // A killed pod's network (rules, veth, lease, netns mount) is released by gc, not by an unmount.
      gcDone = false;
      gc();
    }
    // The pods' cgroups (tspod/<uuid> in every hierarchy) go with gc at the latest;
    // what gc could not remove outlives the directory unless removed here: a leak.
    const uuids = podUuids(dir);
    if (uuids.some((u) => podCgroups(u).length)) gc();
    const cgroups = uuids.flatMap(podCgroups);
    if (cgroups.length) {
      recordLeak('cgroup', `${cgroups.length} cgroup(s) of pods in ${dir} left after gc at teardown: ${cgroups.join(', ')}`);
      removeCgroups(cgroups);
    }
    const mounts = mountsUnder([dir]);
    if (mounts.length) {
      recordLeak('mount', `${mounts.length} mount(s) left under ${dir} at teardown: ${mounts.map((m) => `${m.mountPoint} (${m.fsType})`).join(', ')}`);
      unmountAll([dir]);
    }
    removeTreeSafely(dir);
  };
  const unregister = onExit(() => {
    if (!removed) teardown(false);
  });

  const dd: DataDir = {
    path: dir,
    tspod: (args, opts = {}) => runTspod(args, { ...opts, dir }),
    remove: async (ro = {}) => {
      if (removed) return;
      removed = true;
      unregister();
      const gc = (ro.gc ?? true) && fs.existsSync(path.join(dir, 'pods'));
      if (gc) await runTspod(['gc', '--grace-period=0s', '--expire-prepared=0s'], { dir, timeoutMs: 60_000 }).catch(() => undefined);
      teardown(gc);
    },
  };
  t?.after(() => dd.remove());
  return dd;
}

/** Whether the CLI has been built (bin/tspod exists). */
export function tspodBuilt(): boolean {
  return fs.existsSync(TSPOD_BIN);
}

/** Synchronous variant for quick checks (`tspod version`). */
export function runTspodSync(args: readonly string[], opts: Pick<RunOptions, 'dir' | 'env' | 'cwd'> = {}): RunResult {
  const argv = [...(opts.dir ? [`--dir=${opts.dir}`] : []), ...args];
  const r = spawnSync(TSPOD_BIN, argv, { cwd: opts.cwd ?? REPO_ROOT, env: childEnv(opts), encoding: 'utf8', timeout: 120_000 });
  return {
    code: r.status ?? 128 + (r.signal ? (SIGNALS[r.signal] ?? 0) : 0),
    signal: r.signal,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    timedOut: r.error?.message.includes('ETIMEDOUT') ?? false,
    argv: [TSPOD_BIN, ...argv],
  };
}
