// The native helper (native/helper/PLAN.md), driven through hand-written plans.
// Needs root (namespaces, mounts, pivot_root); skipped otherwise. Node only spawns
// bin/tspod-helper: it never unshares or setns-es itself.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const HELPER = path.join(REPO, 'bin/tspod-helper');
const BUSYBOX = '/bin/busybox';
const isRoot = process.getuid?.() === 0;
const skip = !isRoot
  ? 'needs root'
  : !fs.existsSync(HELPER)
    ? 'bin/tspod-helper not built (make)'
    : !fs.existsSync(BUSYBOX)
      ? 'busybox-static not installed'
      : false;

// ---------------------------------------------------------------- plan writing

/** PLAN.md field encoding: bytes outside !..~ and % as %XX; empty is -E-; a literal - is %2D. */
function enc(s: string): string {
  if (s === '') return '-E-';
  let out = '';
  for (const c of Buffer.from(s, 'utf8')) {
    out += c > 0x20 && c < 0x7f && c !== 0x25 ? String.fromCharCode(c) : '%' + c.toString(16).toUpperCase().padStart(2, '0');
  }
  return out === '-' || out === '-E-' ? '%2D' + out.slice(1) : out;
}
/** A directive line; a field that is exactly '-' stays the raw "none" marker. */
const line = (...fields: string[]): string => fields.map((f) => (f === '-' ? f : enc(f))).join(' ');
/** A directive line whose fields are all literal (commands, arguments). */
const litLine = (kw: string, ...fields: string[]): string => [kw, ...fields.map(enc)].join(' ');

interface AppSpec {
  name: string;
  exec: string[];
  env?: string[];
  user?: string;
  group?: string;
  sgids?: string;
  cwd?: string;
  pre?: string[][];
  post?: string[][];
  caps?: string;
  nnp?: boolean;
  roRoot?: boolean;
  /** app-seccomp fields: MODE ERRNO NAMES */
  seccomp?: [string, string, string];
  /** app-cgroup directories */
  cgroups?: string[];
  /** app-device-filter: a cgroup2 directory and its rules */
  deviceFilter?: [string, string];
}

interface PodSpec {
  hostname?: string;
  namespaces?: string;
  stdin?: 'null' | 'inherit';
  apps: AppSpec[];
  /** Extra set-up lines, after the apps' standard environment. */
  steps?: (pod: { dir: string; appRoot: (name: string) => string }) => string[];
}

interface Pod {
  dir: string;
  plan: string;
  root: string;
  status: string;
  pidFile: string;
  appsPid: string;
  shared: string;
  hostname: string;
  appRoot(name: string): string;
}

let DATA = '';
let LOWER = '';
let podSeq = 0;

const DEFAULT_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'];

function writePod(spec: PodSpec): Pod {
  const dir = path.join(DATA, `pod${++podSeq}`);
  const root = path.join(dir, 'stage1-rootfs');
  const status = path.join(dir, 'status');
  const pidFile = path.join(dir, 'pid');
  const appsPid = path.join(dir, 'apps-pid');
  const shared = path.join(dir, 'shared');
  const hostname = `pod${podSeq}-host`;
  for (const d of [root, shared]) fs.mkdirSync(d, { recursive: true });
  fs.chmodSync(shared, 0o777);
  const appRoot = (name: string) => `/opt/stage2/${name}/rootfs`;
  const L: string[] = [
    '# written by test/helper.test.ts',
    line('version', '1'),
    line('uuid', `00000000-0000-0000-0000-${String(podSeq).padStart(12, '0')}`),
    line('hostname', spec.hostname ?? hostname),
    line('namespaces', spec.namespaces ?? 'mnt,pid,uts,ipc'),
    line('status-dir', status),
    line('pid-file', pidFile),
    line('apps-pid-dir', appsPid),
    line('root', root),
    line('stdin', spec.stdin ?? 'null'),
  ];
  // The Linux environment of each app (appc OS-SPEC), the way stage1 /init writes it.
  for (const a of spec.apps) {
    const A = root + appRoot(a.name);
    const upper = path.join(dir, `upper-${a.name}`);
    const work = path.join(dir, `work-${a.name}`);
    fs.mkdirSync(upper);
    fs.mkdirSync(work);
    L.push(
      line('mkdir', A, '0755'),
      line('mount', 'overlay', A, 'overlay', '-', `lowerdir=${LOWER},upperdir=${upper},workdir=${work}`),
      line('mount', 'proc', `${A}/proc`, 'proc', 'nosuid,nodev,noexec', '-'),
      line('mount', 'sysfs', `${A}/sys`, 'sysfs', 'rdonly,nosuid,nodev,noexec', '-'),
      line('mount', 'tmpfs', `${A}/dev`, 'tmpfs', 'nosuid,strictatime', 'mode=755,size=65536k'),
    );
    for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) {
      L.push(line('touch', `${A}/dev/${d}`, '0666'), line('mount', `/dev/${d}`, `${A}/dev/${d}`, '-', 'bind', '-'));
    }
    L.push(
      line('touch', `${A}/dev/console`, '0600'),
      line('mount', '/dev/null', `${A}/dev/console`, '-', 'bind', '-'),
      line('mkdir', `${A}/dev/pts`, '0755'),
      line('mount', 'devpts', `${A}/dev/pts`, 'devpts', 'nosuid,noexec', 'newinstance,ptmxmode=0666,mode=0620'),
      line('symlink', 'pts/ptmx', `${A}/dev/ptmx`),
      line('mkdir', `${A}/dev/shm`, '1777'),
      line('mount', 'tmpfs', `${A}/dev/shm`, 'tmpfs', 'nosuid,nodev,noexec', 'mode=1777'),
      line('mkdir', `${A}/shared`, '0755'),
      line('mount', shared, `${A}/shared`, '-', 'bind', '-'),
    );
  }
  L.push(...(spec.steps?.({ dir, appRoot: (n) => root + appRoot(n) }) ?? []));
  for (const a of spec.apps) {
    L.push(line('app', a.name), line('app-root', appRoot(a.name)), litLine('app-exec', ...a.exec));
    for (const e of a.env ?? DEFAULT_ENV) L.push(line('app-env', e));
    L.push(
      line('app-cwd', a.cwd ?? '/'),
      line('app-user', a.user ?? '0'),
      line('app-group', a.group ?? '0'),
      'app-supplementary-gids ' + (a.sgids ? enc(a.sgids) : '-'),
    );
    for (const h of a.pre ?? []) L.push(litLine('app-pre-start', ...h));
    for (const h of a.post ?? []) L.push(litLine('app-post-stop', ...h));
    L.push(
      line('app-readonly-root', a.roRoot ? '1' : '0'),
      line('app-no-new-privileges', a.nnp ? '1' : '0'),
      'app-capabilities ' + (a.caps ? enc(a.caps) : '-'),
      ...(a.seccomp ? [line('app-seccomp', ...a.seccomp)] : []),
      ...(a.cgroups ?? []).map((c) => line('app-cgroup', c)),
      ...(a.deviceFilter ? [line('app-device-filter', ...a.deviceFilter)] : []),
      'end-app',
    );
  }
  const plan = path.join(dir, 'plan');
  fs.writeFileSync(plan, L.join('\n') + '\n');
  return { dir, plan, root, status, pidFile, appsPid, shared, hostname, appRoot: (n) => root + appRoot(n) };
}

// ------------------------------------------------------------- running helpers

interface Run {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
}

const live = new Set<ChildProcess>();
const podPids = new Set<number>(); // pid 1 of every pod we saw: killed in after()

function start(args: string[], opts: { env?: Record<string, string>; extraFd?: number } = {}): Run {
  const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
  if (opts.extraFd !== undefined) stdio.push('ignore', 'ignore', 'ignore', 'ignore', opts.extraFd); // fd 7
  const child = spawn(HELPER, args, { stdio, env: opts.env ?? { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) =>
    child.on('close', (code, signal) => {
      live.delete(child);
      resolve({ code, signal, out, err });
    }),
  );
  return { child, out: () => out, err: () => err, done };
}

const run = (pod: Pod, opts?: { env?: Record<string, string>; extraFd?: number }) => start(['run', pod.plan], opts);

async function waitFor<T>(what: string, fn: () => T | undefined | false, ms = 10000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function readInt(file: string): number | undefined {
  try {
    const s = fs.readFileSync(file, 'utf8');
    return /^\d+\n$/.test(s) ? Number(s) : undefined;
  } catch {
    return undefined;
  }
}

/** Waits until the pod is up (pid file written) and returns pid 1's host pid. */
async function podUp(pod: Pod): Promise<number> {
  const pid = await waitFor('the pid file', () => readInt(pod.pidFile));
  podPids.add(pid);
  return pid;
}

function procStatus(pid: number): Record<string, string> {
  const r: Record<string, string> = {};
  for (const l of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = l.indexOf(':');
    if (i > 0) r[l.slice(0, i)] = l.slice(i + 1).trim();
  }
  return r;
}

const nsOf = (pid: number | 'self', ns: string) => fs.readlinkSync(`/proc/${pid}/ns/${ns}`);
/** The fds of a process that are directories (what `/proc/PID/fd/N/..` could walk up from). */
function dirFds(pid: number): string[] {
  const out: string[] = [];
  for (const n of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.statSync(`/proc/${pid}/fd/${n}`).isDirectory()) out.push(`${n} -> ${fs.readlinkSync(`/proc/${pid}/fd/${n}`)}`);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}
const sh = (script: string) => ['/bin/sh', '-c', script];
const mountPoints = (mountinfo: string) =>
  mountinfo
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]);

// --------------------------------------------------------------------- fixture

// Other test files may mount things on the host concurrently: a leak from us is any host
// mount that names our data directory (mount point, source or options like lowerdir=).
const ourHostMounts = () =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => DATA && l.includes(DATA));

function buildLower(dir: string): void {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root', 'work/dir', 'home/alice', 'home/bob']) {
    fs.mkdirSync(path.join(dir, d), { recursive: true });
  }
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const a of applets) if (a !== 'busybox') fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  fs.writeFileSync(
    path.join(dir, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n',
  );
  fs.writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\nstaff:x:50:alice\nalice:x:1000:\nbob:x:1001:\n');
  fs.chownSync(path.join(dir, 'home/bob'), 1234, 5678);
}

describe('tspod-helper', { skip }, () => {
  before(() => {
    // test/run.mjs gives each run a scratch root; run directly, test/data.
    const base = process.env.TSPOD_TEST_ROOT || path.join(REPO, 'test/data');
    fs.mkdirSync(base, { recursive: true });
    DATA = fs.mkdtempSync(path.join(base, `helper-${process.pid}-`));
    LOWER = path.join(DATA, 'lower');
    buildLower(LOWER);
  });

  after(async () => {
    // Whole trees: killing only an outer helper would leave its pid 1 (and the pod) running.
    const descendants = (pid: number): number[] => {
      let kids: number[] = [];
      try {
        kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
      } catch {
        /* gone */
      }
      return kids.flatMap((k) => [k, ...descendants(k)]);
    };
    for (const c of live) {
      for (const p of c.pid ? [...descendants(c.pid), c.pid] : []) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (const p of podPids) {
      try {
        process.kill(p, 'SIGKILL'); // pid 1: the kernel kills the rest of its pid namespace
      } catch {
        /* gone */
      }
    }
    await waitFor('helpers to exit', () => live.size === 0, 5000).catch(() => undefined);
    await waitFor('pods to die', () => [...podPids].every((p) => !fs.existsSync(`/proc/${p}`)), 5000).catch(
      () => undefined,
    );
    const leaked = ourHostMounts();
    if (DATA && !leaked.length) fs.rmSync(DATA, { recursive: true, force: true });
    assert.deepEqual(leaked, [], 'mounts leaked to the host (data dir kept for inspection)');
  });

  test('exit codes pass through: 0, 3, and 128+9 for a SIGKILLed app; status files', async () => {
    const cases: Array<[string, number]> = [
      ['exit 0', 0],
      ['exit 3', 3],
      ['kill -9 $$', 137],
    ];
    await Promise.all(
      cases.map(async ([script, want]) => {
        const pod = writePod({ apps: [{ name: 'main', exec: sh(script) }] });
        const r = await run(pod).done;
        assert.equal(r.code, want, `${script}: ${r.err}`);
        assert.equal(fs.readFileSync(path.join(pod.status, 'main'), 'utf8'), `${want}\n`);
      }),
    );
  });

  test('pid 1 is the helper, the app is pid 2 of its own pid namespace; hostname, uts and ipc are the pod’s', async () => {
    const pod = writePod({
      apps: [
        {
          name: 'main',
          exec: sh(
            'echo pid=$$; echo comm=$(cat /proc/1/comm); echo host=$(hostname); grep NSpid /proc/self/status; ' +
              'for n in pid uts ipc mnt net; do echo $n=$(readlink /proc/self/ns/$n); done; echo procs $(ls -d /proc/[0-9]*)',
          ),
        },
      ],
    });
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split('\n');
    assert.ok(lines.includes('pid=2'), r.out);
    assert.ok(lines.includes('comm=tspod-helper'), r.out);
    assert.ok(lines.includes(`host=${pod.hostname}`), r.out);
    assert.ok(r.out.split('\n').some((l) => /^NSpid:\t\d+$/.test(l)), r.out); // one level: the app cannot see the host's pids
    for (const n of ['pid', 'uts', 'ipc', 'mnt']) {
      assert.ok(lines.includes(`${n}=${nsOf('self', n)}`) === false, `${n} namespace is the host's`);
    }
    assert.ok(lines.includes(`net=${nsOf('self', 'net')}`), 'without "net" the pod keeps the host network');
    const procs = lines.find((l) => l.startsWith('procs '))!.split(' ').slice(1).map((p) => Number(p.slice(6)));
    assert.equal(Math.min(...procs), 1);
    assert.ok(Math.max(...procs) < 20, `only the pod's processes are visible: ${procs}`);
  });

  test('mount namespace: only the app’s mounts; /proc, /dev nodes, /sys read-only, writable overlay root', async () => {
    const pod = writePod({
      apps: [
        {
          name: 'main',
          exec: sh(
            'cat /proc/self/mountinfo; echo ---; ls /dev | tr "\\n" " "; echo; ' +
              'test -c /dev/null && test -c /dev/zero && test -c /dev/urandom && echo dev-ok; ' +
              'echo x > /dev/full 2>/dev/null || echo full-enospc; ' +
              'touch /sys/kernel/x 2>/dev/null || echo sys-ro; ' +
              'echo written > /tmp/file && cat /tmp/file; test -d /proc/1 && echo proc-ok',
          ),
        },
      ],
    });
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    const [mi, rest] = r.out.split('---\n');
    const points = mountPoints(mi).sort();
    const expected = ['/', '/proc', '/sys', '/dev', '/dev/pts', '/dev/shm', '/shared'];
    for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'console']) expected.push(`/dev/${d}`);
    assert.deepEqual(points, expected.sort(), 'mount points seen by the app');
    const sys = mi.split('\n').find((l) => l.split(' ')[4] === '/sys')!;
    assert.match(sys.split(' ')[5], /^ro,/, '/sys is mounted read-only');
    assert.doesNotMatch(mi, /\/sys\/fs\/cgroup|\/mnt\//, 'no host mount is visible');
    const devs = rest.split('\n')[0].trim().split(' ').sort();
    assert.deepEqual(devs, ['console', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'tty', 'urandom', 'zero']);
    for (const want of ['dev-ok', 'full-enospc', 'sys-ro', 'written', 'proc-ok']) assert.ok(rest.includes(want), want);
    // The write went to the app's overlay upper directory on the host, not to the image.
    assert.equal(fs.readFileSync(path.join(pod.dir, 'upper-main/tmp/file'), 'utf8'), 'written\n');
    assert.equal(fs.existsSync(path.join(LOWER, 'tmp/file')), false);
  });

  test('read-only rootfs and read-only volumes (recursive ones too); mounts below the root stay writable', async () => {
    const pod = writePod({
      apps: [
        {
          name: 'main',
          roRoot: true,
          exec: sh(
            'touch /x 2>/dev/null || echo root-ro; echo y > /shared/y && echo shared-rw; ' +
              'touch /vol/x 2>/dev/null || echo vol-ro; touch /vol/sub/x 2>/dev/null || echo vol-sub-ro; ' +
              'touch /vol2/x 2>/dev/null || echo vol2-ro; grep -c " /vol/sub .*nosuid" /proc/self/mountinfo',
          ),
        },
      ],
      steps: ({ dir, appRoot }) => {
        const A = appRoot('main');
        const R = `${dir}/stage1-rootfs`; // set-up steps act below the pod root only
        fs.mkdirSync(`${dir}/vol2`); // a host directory as a volume source
        return [
          // a submount in the volume's source, made inside the pod's private mount namespace
          line('mkdir', `${R}/vol/sub`, '0755'),
          line('mount', 'tmpfs', `${R}/vol/sub`, 'tmpfs', 'nosuid', '-'),
          line('mkdir', `${A}/vol`, '0755'),
          line('mount', `${R}/vol`, `${A}/vol`, '-', 'bind,rec', '-'),
          line('mount', '-', `${A}/vol`, '-', 'remount,bind,rdonly,rec', '-'),
          line('mkdir', `${A}/vol2`, '0755'),
          line('mount', `${dir}/vol2`, `${A}/vol2`, '-', 'bind,rdonly', '-'),
        ];
      },
    });
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    // (the submount keeps its nosuid: flags are added, not replaced)
    assert.equal(r.out, 'root-ro\nshared-rw\nvol-ro\nvol-sub-ro\nvol2-ro\n1\n');
  });

  test('optional mounts: a missing target is skipped, an existing one (inside the plan\'s proc and sysfs) mounted, any other failure is an error', async () => {
    const pod = writePod({
      apps: [
        {
          name: 'main',
          exec: sh(
            'grep -E " /proc/(kcore|sys|no-such-file) | /sys/firmware " /proc/self/mountinfo | cut -d" " -f5,6 | cut -d, -f1 | sort; ' +
              'test -e /proc/no-such-file || echo missing-skipped; ls -A /sys/firmware | wc -l',
          ),
        },
      ],
      steps: ({ appRoot }) => {
        const A = appRoot('main');
        return [
          line('mount', '/dev/null', `${A}/proc/kcore`, '-', 'bind,nodev,optional', '-'),
          line('mount', '/dev/null', `${A}/proc/no-such-file`, '-', 'bind,optional', '-'),
          line('mount', 'tmpfs', `${A}/proc/no-such-dir/x`, 'tmpfs', 'rdonly,optional', '-'),
          line('mount', 'tmpfs', `${A}/sys/firmware`, 'tmpfs', 'rdonly,nosuid,nodev,noexec,optional', 'mode=0555'),
          line('mount', `${A}/proc/sys`, `${A}/proc/sys`, '-', 'bind,rdonly,nosuid,nodev,noexec,optional', '-'),
        ];
      },
    });
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `${fs.existsSync('/proc/kcore') ? '/proc/kcore rw\n' : ''}/proc/sys ro\n${fs.existsSync('/sys/firmware') ? '/sys/firmware ro\n' : ''}missing-skipped\n0\n`);

    // ENOTDIR (a target below a file) is no "missing target": an error, optional or not
    const bad = writePod({
      apps: [{ name: 'main', exec: sh('true') }],
      steps: ({ appRoot }) => [line('mount', '/dev/null', `${appRoot('main')}/proc/version/x`, '-', 'bind,optional', '-')],
    });
    const rb = await run(bad).done;
    assert.equal(rb.code, 254, rb.err);
    assert.match(rb.err, /proc\/version\/x/);
  });

  test('user, group and supplementary groups: by number, name: (the app’s /etc) and path:', async () => {
    const show = sh('grep -E "^(Uid|Gid|Groups|CapPrm|CapEff|CapBnd|NoNewPrivs):" /proc/self/status');
    const cases: Array<[AppSpec, Record<string, string>]> = [
      [
        { name: 'byname', exec: show, user: 'name:alice', group: 'name:staff', sgids: '10,20' },
        { Uid: '1000\t1000\t1000\t1000', Gid: '50\t50\t50\t50', Groups: '10 20', CapEff: '0000000000000000', NoNewPrivs: '0' },
      ],
      [
        { name: 'bypath', exec: show, user: 'path:/home/bob', group: 'path:/home/bob', nnp: true },
        { Uid: '1234\t1234\t1234\t1234', Gid: '5678\t5678\t5678\t5678', Groups: '', CapPrm: '0000000000000000', NoNewPrivs: '1' },
      ],
      [
        // root, limited to CAP_CHOWN|CAP_KILL|CAP_NET_BIND_SERVICE
        { name: 'rootcaps', exec: show, user: '0', group: '0', caps: '421' },
        {
          Uid: '0\t0\t0\t0',
          Groups: '',
          CapBnd: '0000000000000421',
          CapPrm: '0000000000000421',
          CapEff: '0000000000000421',
        },
      ],
    ];
    for (const [app, want] of cases) {
      const pod = writePod({ apps: [app] });
      const r = await run(pod).done;
      assert.equal(r.code, 0, `${app.name}: ${r.err}`);
      const got: Record<string, string> = {};
      for (const l of r.out.split('\n').filter(Boolean)) {
        const i = l.indexOf(':');
        got[l.slice(0, i)] = l.slice(i + 1).trim();
      }
      for (const [k, v] of Object.entries(want)) assert.equal(got[k], v, `${app.name}: ${k}`);
    }
    const bad = writePod({ apps: [{ name: 'nouser', exec: ['/bin/true'], user: 'name:mallory' }] });
    const r = await run(bad).done;
    assert.equal(r.code, 254);
    assert.match(r.err, /^tspod-helper: app nouser: user mallory not found/m);
  });

  test('the environment is exactly the plan’s; the working directory is app-cwd', async () => {
    const env = ['PATH=/bin', 'FOO=bar baz', 'EMPTY=', 'PCT=100%-sure', 'UTF=grüße', 'DASH=-'];
    const pod = writePod({ apps: [{ name: 'env', exec: ['env'], env }] });
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.out.split('\n').filter(Boolean).sort(), [...env].sort());

    const pod2 = writePod({ apps: [{ name: 'pwd', exec: ['/bin/pwd'], cwd: '/work/dir' }] });
    const r2 = await run(pod2).done;
    assert.equal(r2.code, 0, r2.err);
    assert.equal(r2.out, '/work/dir\n');

    // Arguments: a lone "-", an empty one, spaces.
    const pod3 = writePod({ apps: [{ name: 'args', exec: ['/bin/sh', '-c', 'printf "[%s]" "$@"', 'x', '-', '', 'a b', '-E-'] }] });
    const r3 = await run(pod3).done;
    assert.equal(r3.code, 0, r3.err);
    assert.equal(r3.out, '[-][][a b][-E-]');
  });

  test('several apps run at once; the first failure decides the exit code and stops the others', async () => {
    const pod = writePod({
      apps: [
        { name: 'fails', exec: sh('sleep 1; exit 5') },
        { name: 'sleeper', exec: ['sleep', '1000'] },
        { name: 'graceful', exec: sh('trap "exit 0" TERM; while :; do sleep 0.05; done') },
      ],
    });
    const t0 = Date.now();
    const h = run(pod);
    await podUp(pod);
    const pids = ['fails', 'sleeper', 'graceful'].map((a) => readInt(path.join(pod.appsPid, a))!);
    for (const p of pids) assert.ok(p > 0 && fs.existsSync(`/proc/${p}`), 'all three apps run at the same time');
    const r = await h.done;
    assert.equal(r.code, 5, r.err);
    assert.ok(Date.now() - t0 < 8000, 'stopped by SIGTERM, without waiting for the SIGKILL deadline');
    const st = (a: string) => fs.readFileSync(path.join(pod.status, a), 'utf8');
    assert.equal(st('fails'), '5\n');
    assert.equal(st('sleeper'), `${128 + 15}\n`);
    assert.equal(st('graceful'), '0\n');
  });

  test('an app that ignores SIGTERM is SIGKILLed 10 s after the stop began', { timeout: 30000 }, async () => {
    const pod = writePod({
      apps: [
        { name: 'fails', exec: sh('sleep 0.3; exit 2') },
        { name: 'stubborn', exec: sh('trap "" TERM; while :; do sleep 0.05; done') },
      ],
    });
    const t0 = Date.now();
    const r = await run(pod).done;
    const took = Date.now() - t0;
    assert.equal(r.code, 2, r.err);
    assert.ok(took >= 9500 && took < 15000, `took ${took} ms`);
    assert.equal(fs.readFileSync(path.join(pod.status, 'stubborn'), 'utf8'), `${128 + 9}\n`);
  });

  test('pre-start and post-stop handlers run in order around the app, as root with the app’s restrictions', async () => {
    const log = (s: string) => sh(`echo ${s}:$(id -u):$(id -g):$(id -G | tr " " ,):$(grep -E "^CapBnd" /proc/self/status | cut -f2) >> /shared/log`);
    const pod = writePod({
      apps: [
        {
          name: 'main',
          user: 'name:alice',
          group: 'name:alice',
          sgids: '50',
          caps: 'a80425fb',
          exec: log('main'),
          pre: [log('pre1'), log('pre2'), sh('mkdir /shared/data && chown 1000:1000 /shared/data')],
          post: [log('post1'), sh('exit 1'), log('post2')],
        },
      ],
    });
    fs.writeFileSync(path.join(pod.shared, 'log'), '', { mode: 0o666 });
    fs.chmodSync(path.join(pod.shared, 'log'), 0o666);
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    // uid 0, gid 0, no supplementary groups for the handlers; the app's bounding set for all.
    const root = '0:0:0:00000000a80425fb';
    assert.equal(
      fs.readFileSync(path.join(pod.shared, 'log'), 'utf8'),
      `pre1:${root}\npre2:${root}\nmain:1000:1000:1000,50:00000000a80425fb\npost1:${root}\npost2:${root}\n`,
    );
    const data = fs.statSync(path.join(pod.shared, 'data'));
    assert.deepEqual([data.uid, data.gid], [1000, 1000], 'a pre-start handler chowned a volume for the app');
    assert.match(r.err, /post-stop handler \/bin\/sh failed \(exit code 1\)/);

    // A failing pre-start handler: the app does not start, its code is the pod's, post-stop still runs.
    const pod2 = writePod({
      apps: [{ name: 'main', exec: log('main'), pre: [log('pre1'), sh('exit 4')], post: [log('post1')] }],
    });
    const r2 = await run(pod2).done;
    assert.equal(r2.code, 4);
    const bnd = procStatus(process.pid).CapBnd; // no app-capabilities: the helper's own set
    assert.equal(fs.readFileSync(path.join(pod2.shared, 'log'), 'utf8'), `pre1:0:0:0:${bnd}\npost1:0:0:0:${bnd}\n`);
    assert.equal(fs.readFileSync(path.join(pod2.status, 'main'), 'utf8'), '4\n');
  });

  test('pid 1 reaps orphans while the pod runs and kills what is left when the apps are done', async () => {
    const pod = writePod({
      apps: [
        {
          name: 'main',
          exec: sh(
            // orphans that exit at once (zombies unless pid 1 reaps them), then a long-lived one
            '(sleep 0.05 &); (sleep 0.05 &); (true &); sleep 1; ' +
              'for f in /proc/[0-9]*/stat; do read a b c rest < $f; echo "$a $c"; done; (sleep 1000 &); sleep 0.5; exit 0',
          ),
        },
      ],
    });
    const h = run(pod);
    const pid1 = await podUp(pod);
    const podPidNs = nsOf(pid1, 'pid');
    const r = await h.done;
    assert.equal(r.code, 0, r.err);
    const states = r.out.split('\n').filter(Boolean).map((l) => l.split(' ')[1]);
    assert.ok(states.length >= 2);
    assert.ok(!states.includes('Z'), `no zombie in the pod: ${r.out}`);
    // Nothing of the pod survives it: no host process is left in its pid namespace.
    const leftovers = fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return fs.readlinkSync(`/proc/${p}/ns/pid`) === podPidNs;
        } catch {
          return false;
        }
      });
    assert.deepEqual(leftovers, []);
  });

  test('SIGHUP and SIGTERM to the outer helper reach the app', async () => {
    const pod = writePod({
      apps: [
        {
          name: 'main',
          exec: sh('trap "echo got-HUP" HUP; trap "echo got-TERM; exit 7" TERM; while :; do sleep 0.05; done'),
        },
      ],
    });
    const h = run(pod);
    await podUp(pod);
    h.child.kill('SIGHUP');
    await waitFor('HUP to arrive', () => h.out().includes('got-HUP'));
    h.child.kill('SIGTERM');
    const r = await h.done;
    assert.equal(r.code, 7, r.err);
    assert.equal(r.out, 'got-HUP\ngot-TERM\n');
  });

  test('pid file, app pid files, the lock fd kept by the outer helper only', async () => {
    const lockPath = path.join(DATA, 'lockfile');
    const lockFd = fs.openSync(lockPath, 'w');
    try {
      const pod = writePod({
        apps: [{ name: 'main', exec: sh('test -e /proc/self/fd/7 && echo lock-leaked || echo lock-not-inherited; sleep 1000') }],
      });
      const h = run(pod, { env: { PATH: '/bin', TSPOD_LOCK_FD: '7' }, extraFd: lockFd });
      const pid1 = await podUp(pod);
      const s1 = procStatus(pid1);
      assert.equal(s1.NSpid, `${pid1}\t1`, 'the pid file holds the host pid of the pod’s pid 1');
      assert.equal(Number(s1.PPid), h.child.pid, 'pid 1 is the child of the outer helper');
      assert.equal(fs.readFileSync(`/proc/${pid1}/comm`, 'utf8'), 'tspod-helper\n');
      const app = readInt(path.join(pod.appsPid, 'main'))!;
      const s2 = procStatus(app);
      assert.equal(s2.NSpid, `${app}\t2`);
      assert.equal(Number(s2.PPid), pid1);
      assert.notEqual(nsOf(app, 'mnt'), nsOf(pid1, 'mnt'), 'each app has its own mount namespace');
      assert.equal(nsOf(app, 'pid'), nsOf(pid1, 'pid'));
      // The outer helper alone holds the pod lock: not pid 1 (which the pod sees), not the app.
      assert.equal(fs.readlinkSync(`/proc/${h.child.pid}/fd/7`), lockPath);
      assert.equal(fs.existsSync(`/proc/${pid1}/fd/7`), false, 'pid 1 does not hold the lock');
      assert.deepEqual(dirFds(pid1), [], 'pid 1 holds no directory');
      await waitFor('the app output', () => h.out().includes('lock-'));
      assert.equal(h.out(), 'lock-not-inherited\n');
      assert.equal(fs.existsSync(`/proc/${app}/fd/7`), false);
      h.child.kill('SIGTERM');
      const r = await h.done;
      assert.equal(r.code, 143, r.err);
      assert.equal(fs.readFileSync(path.join(pod.status, 'main'), 'utf8'), '143\n');
    } finally {
      fs.closeSync(lockFd);
    }
  });

  test('enter: same namespaces as the app, its environment (caller’s TERM), credentials and restrictions', async () => {
    const pod = writePod({
      namespaces: 'mnt,pid,uts,ipc,net',
      apps: [{ name: 'main', exec: ['sleep', '1000'], user: 'name:alice', group: 'name:staff', nnp: true }],
    });
    const h = run(pod);
    const pid1 = await podUp(pod);
    const app = readInt(path.join(pod.appsPid, 'main'))!;
    const envFile = path.join(pod.dir, 'env-main');
    fs.writeFileSync(envFile, 'PATH=/bin:/usr/bin\nHOME=/home/alice\nGREETING=hello world\nTERM=from-the-env-file\n');
    const enter = (cmd: string[], env: Record<string, string>, extra: string[] = []) =>
      start(
        [
          'enter',
          `--pid=${pid1}`,
          `--app-pid=${app}`,
          `--env-file=${envFile}`,
          '--user=name:alice',
          '--group=name:staff',
          '--supplementary-gids=-',
          '--capabilities=-',
          '--no-new-privileges=1',
          '--cwd=/home/alice',
          ...extra,
          '--',
          ...cmd,
        ],
        { env },
      ).done;

    const r = await enter(
      sh(
        'for n in ipc uts net pid mnt; do echo $n=$(readlink /proc/self/ns/$n); done; echo cwd=$(pwd); ' +
          'grep -E "^(Uid|Gid|CapEff|NoNewPrivs):" /proc/self/status; echo ---; env; exit 9',
      ),
      { PATH: '/bin', TERM: 'xterm-test' },
    );
    assert.equal(r.code, 9, r.err);
    const [head, envOut] = r.out.split('---\n');
    const lines = head.split('\n');
    for (const n of ['ipc', 'uts', 'net', 'pid', 'mnt']) {
      assert.ok(lines.includes(`${n}=${nsOf(app, n)}`), `${n}: ${head}`);
      assert.notEqual(nsOf(app, n), nsOf('self', n));
    }
    assert.ok(lines.includes('cwd=/home/alice'));
    assert.ok(lines.includes('Uid:\t1000\t1000\t1000\t1000'));
    assert.ok(lines.includes('Gid:\t50\t50\t50\t50'));
    assert.ok(lines.includes('CapEff:\t0000000000000000'));
    assert.ok(lines.includes('NoNewPrivs:\t1'));
    const env = envOut.split('\n').filter(Boolean).filter((l) => !/^(PWD|SHLVL|_)=/.test(l)); // sh adds these
    assert.deepEqual(env.sort(), ['GREETING=hello world', 'HOME=/home/alice', 'PATH=/bin:/usr/bin', 'TERM=xterm-test'].sort());

    // Without a TERM of the caller's: vt100. A missing command: 127, naming it.
    const r2 = await enter(['sh', '-c', 'echo $TERM; hostname'], { PATH: '/bin' });
    assert.equal(r2.code, 0, r2.err);
    assert.equal(r2.out, `vt100\n${pod.hostname}\n`);
    const r3 = await enter(['no-such-command'], { PATH: '/bin' });
    assert.equal(r3.code, 127);
    assert.match(r3.err, /^tspod-helper: enter: no-such-command: not found in PATH=\/bin:\/usr\/bin$/m);

    h.child.kill('SIGTERM');
    assert.equal((await h.done).code, 143);
  });

  test('enter as root never gets more capabilities than the mask', async () => {
    const pod = writePod({ apps: [{ name: 'main', exec: ['sleep', '1000'], caps: '400' }] });
    const h = run(pod);
    const pid1 = await podUp(pod);
    const app = readInt(path.join(pod.appsPid, 'main'))!;
    const r = await start(
      ['enter', `--pid=${pid1}`, `--app-pid=${app}`, '--capabilities=400', '--', 'grep', '-E', '^Cap(Bnd|Prm|Eff):', '/proc/self/status'],
      { env: { PATH: '/bin' } },
    ).done;
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'CapPrm:\t0000000000000400\nCapEff:\t0000000000000400\nCapBnd:\t0000000000000400\n');
    h.child.kill('SIGTERM');
    await h.done;
  });

  test('a net namespace has only loopback, and it is up', async () => {
    const pod = writePod({ namespaces: 'mnt,pid,uts,ipc,net', apps: [{ name: 'main', exec: sh('ip -o link | cut -d" " -f2,3') }] });
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^lo: <LOOPBACK,UP,LOWER_UP>\n$/);
  });

  test('netns create/remove; a plan\'s netns is joined (with a sysctl in it); exit-exec gets the code and the lock; bad directives refused', async () => {
    const nsFile = path.join(DATA, 'netns-joined');
    const made = spawnSync(HELPER, ['netns', 'create', nsFile], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    try {
      const again = spawnSync(HELPER, ['netns', 'create', nsFile], { encoding: 'utf8' });
      assert.equal(again.status, 254, 'an existing file is refused');
      assert.match(again.stderr, /^tspod-helper: netns create .*: File exists\n$/);
      // A veth pair in that namespace: the pod must see it (it joined, it did not make one).
      const veth = spawnSync('nsenter', [`--net=${nsFile}`, 'ip', 'link', 'add', 'tsva', 'type', 'veth', 'peer', 'name', 'tsvb'], { encoding: 'utf8' });
      assert.equal(veth.status, 0, veth.stderr);
      const marker = path.join(DATA, 'exit-exec-out');
      const pod = writePod({ namespaces: 'mnt,pid,uts,ipc,net', apps: [{ name: 'main', exec: sh('ip -o link | cut -d" " -f2 | cut -d@ -f1 | tr -d : | sort; cat /proc/sys/net/ipv4/ip_forward; exit 3') }] });
      fs.writeFileSync(
        pod.plan,
        fs.readFileSync(pod.plan, 'utf8').replace(/^(namespaces .*)$/m, (ns) =>
          [ns, line('netns', nsFile), line('sysctl', 'net.ipv4.ip_forward', '1'), litLine('exit-exec', '/bin/sh', '-c', `echo "$0 $1 lock=$(readlink /proc/self/fd/7)" > ${marker}; exit 9`, 'arg0')].join('\n'),
        ),
      );
      const lockFd = fs.openSync(path.join(pod.dir, 'lock'), 'w');
      try {
        const r = await run(pod, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TSPOD_LOCK_FD: '7' }, extraFd: lockFd }).done;
        assert.equal(r.out, 'lo\ntsva\ntsvb\n1\n', 'the joined namespace: its links, the sysctl written there');
        assert.equal(r.code, 9, `exit-exec's code is the helper's: ${r.err}`);
        assert.equal(fs.readFileSync(marker, 'utf8'), `arg0 --exit-code=3 lock=${path.join(pod.dir, 'lock')}\n`, 'the pod\'s code as the last argument; the lock fd inherited');
      } finally {
        fs.closeSync(lockFd);
      }
      const bad = writePod({ namespaces: 'mnt,pid,uts,ipc', apps: [{ name: 'main', exec: ['true'] }] });
      fs.writeFileSync(bad.plan, fs.readFileSync(bad.plan, 'utf8').replace(/^(namespaces .*)$/m, `$1\n${line('netns', nsFile)}`));
      const b = await run(bad).done;
      assert.equal(b.code, 254);
      assert.match(b.err, /^tspod-helper: plan .* line \d+: netns needs net in namespaces\n$/);
      const rel = writePod({ namespaces: 'mnt,pid,uts,ipc', apps: [{ name: 'main', exec: ['true'] }] });
      fs.writeFileSync(rel.plan, fs.readFileSync(rel.plan, 'utf8').replace(/^(namespaces .*)$/m, `$1\n${litLine('exit-exec', 'bin/sh')}`));
      const c = await run(rel).done;
      assert.equal(c.code, 254);
      assert.match(c.err, /exit-exec wants an absolute path/);
    } finally {
      const rm = spawnSync(HELPER, ['netns', 'remove', nsFile], { encoding: 'utf8' });
      assert.equal(rm.status, 0, rm.stderr);
    }
    assert.ok(!fs.existsSync(nsFile), 'removed');
    assert.equal(spawnSync(HELPER, ['netns', 'remove', nsFile]).status, 0, 'removing twice is fine');
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(nsFile), 'no nsfs mount left');
  });

  test('stdin inherit: the app reads the caller’s stdin; on a terminal it gets ^C', async () => {
    const pod = writePod({ stdin: 'inherit', apps: [{ name: 'main', exec: ['cat'] }] });
    const child = spawn(HELPER, ['run', pod.plan], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: '/bin' } });
    live.add(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stdin.end('through the pod\n');
    const code = await new Promise((r) => child.on('close', (c) => (live.delete(child), r(c))));
    assert.equal(code, 0);
    assert.equal(out, 'through the pod\n');

    // A real terminal (script(1) makes a pty): ^C goes to the app's foreground process group.
    const pod2 = writePod({
      stdin: 'inherit',
      apps: [{ name: 'main', exec: sh('trap "echo got-INT; exit 6" INT; echo ready; while :; do sleep 0.05; done') }],
    });
    const s = spawn('script', ['-qec', `${HELPER} run ${pod2.plan}`, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'dumb' },
    });
    live.add(s);
    let tout = '';
    s.stdout.on('data', (d: Buffer) => (tout += d));
    await waitFor('the app on the terminal', () => tout.includes('ready'));
    await podUp(pod2);
    s.stdin.write('\x03');
    const tcode = await new Promise((r) => s.on('close', (c) => (live.delete(s), r(c))));
    assert.match(tout, /got-INT/);
    assert.equal(tcode, 6);
  });

  test('the helper’s own failures: one "tspod-helper: " line and 254; a missing executable is 127', async () => {
    const pod = writePod({ apps: [{ name: 'main', exec: ['/bin/true'] }] });
    const bad = path.join(pod.dir, 'bad-plan');
    fs.writeFileSync(bad, fs.readFileSync(pod.plan, 'utf8').replace('stdin null', 'stdin null\nfrobnicate 1'));
    let r = await start(['run', bad]).done;
    assert.equal(r.code, 254);
    assert.match(r.err, /^tspod-helper: plan .* line \d+: unknown directive "frobnicate"\n$/);

    r = await start(['run', path.join(pod.dir, 'no-such-plan')]).done;
    assert.equal(r.code, 254);
    assert.match(r.err, /^tspod-helper: cannot read plan .*: No such file or directory\n$/);

    const pod2 = writePod({ apps: [{ name: 'web', exec: ['/usr/bin/nginx', '-g', 'daemon off;'] }] });
    r = await run(pod2).done;
    assert.equal(r.code, 127);
    assert.match(r.err, /^tspod-helper: app web: \/usr\/bin\/nginx: not found\n$/);
    assert.equal(fs.readFileSync(path.join(pod2.status, 'web'), 'utf8'), '127\n');
  });

  test('userns: pid 1 and the apps in a user namespace of the plan\'s; an idmapped lower; create-owner; plan errors', async () => {
    const B = 0x60000000; // outside tspod's ranges
    const pod = writePod({
      apps: [{ name: 'main', exec: sh('cat /proc/self/uid_map /proc/self/gid_map; stat -c %u:%g /bin/busybox /etc/made; id -u; if mknod /tmp/n c 1 3 2>/dev/null; then echo mknod; fi') }],
      steps: ({ appRoot }) => [line('write', `${appRoot('main')}/etc/made`, '0644', 'x')],
    });
    const text = fs.readFileSync(pod.plan, 'utf8');
    const lowerAt = path.join(pod.root, 'lower');
    const plan = text
      .replace('stdin null\n', `stdin null\nuserns ${B} ${B} 65536\ncreate-owner ${B} ${B}\n`)
      .replace(/^(mount overlay .*)lowerdir=[^,]*,/m, `mkdir ${lowerAt} 0755\nmount ${LOWER} ${lowerAt} - bind,idmap -\n$1lowerdir=${lowerAt},`);
    fs.writeFileSync(pod.plan, plan);
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(
      r.out.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/).join(' ')),
      [`0 ${B} 65536`, `0 ${B} 65536`, '0:0', '0:0', '0'],
      r.out,
    );
    // What the set-up made is the range's root on the host; the lower stays the host's.
    assert.equal(fs.statSync(path.join(pod.dir, 'upper-main/etc/made')).uid, B);
    assert.equal(fs.statSync(path.join(LOWER, 'bin/busybox')).uid, 0);

    const bad = (from: string, to: string, msg: RegExp) => {
      const f = path.join(pod.dir, `bad-${Math.random().toString(36).slice(2)}`);
      fs.writeFileSync(f, plan.replace(from, to));
      const c = spawnSync(HELPER, ['run', f], { encoding: 'utf8' });
      assert.equal(c.status, 254, c.stderr);
      assert.match(c.stderr, msg);
      assert.equal(c.stderr.split('\n').filter(Boolean).length, 1, c.stderr);
    };
    bad(`userns ${B} ${B} 65536`, `userns 0 ${B} 65536`, /line \d+: userns: the host's root \(id 0\) is never mapped into a pod\n$/);
    bad(`userns ${B} ${B} 65536`, `userns ${B} ${B} 0`, /line \d+: userns wants <uid base> <gid base> <count>/);
    bad(`userns ${B} ${B} 65536`, `userns 4294967295 ${B} 2`, /line \d+: userns wants/);
    bad(`userns ${B} ${B} 65536\n`, '', /line \d+: idmap needs a userns directive\n$/);
    bad(`create-owner ${B} ${B}`, `create-owner - ${B}`, /line \d+: create-owner wants a uid and a gid\n$/);
    bad('namespaces mnt,pid,uts,ipc', 'namespaces mnt,uts,ipc', /userns needs pid in namespaces\n$/);
    bad(' - bind,idmap -', ' - remount,bind,idmap -', /line \d+: idmap is for a new bind mount\n$/);
  });

  test('an image symlink cannot redirect a set-up step to the host', async () => {
    // The image has /etc-link -> <an absolute host path>. A step writing through it must
    // resolve it inside the rootfs (where that path also exists), never on the host.
    const outside = path.join(DATA, 'outside');
    fs.mkdirSync(outside, { recursive: true });
    const pod = writePod({ apps: [{ name: 'main', exec: sh('cat /etc-link/marker') }] });
    const upper = path.join(pod.dir, 'upper-main');
    fs.symlinkSync(outside, path.join(upper, 'etc-link'));
    fs.mkdirSync(path.join(upper, outside), { recursive: true });
    const step = line('write', `${pod.appRoot('main')}/etc-link/marker`, '0644', 'inside\n');
    fs.writeFileSync(pod.plan, fs.readFileSync(pod.plan, 'utf8').replace(/^app main$/m, `${step}\napp main`));
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'inside\n');
    assert.deepEqual(fs.readdirSync(outside), [], 'nothing was written outside the rootfs');
    assert.equal(fs.readFileSync(path.join(upper, outside, 'marker'), 'utf8'), 'inside\n');
  });

  // ------------------------------------------------------------------ security

  /** Files named `name` under DATA, except in the pod's own root and upper directories. */
  function canariesOutside(pod: Pod, name: string): string[] {
    return (fs.readdirSync(DATA, { recursive: true }) as string[])
      .filter((rel) => path.basename(rel) === name)
      .map((rel) => path.join(DATA, rel))
      .filter((f) => !f.startsWith(pod.root + '/') && !f.startsWith(path.join(pod.dir, 'upper-')));
  }

  /**
   * sh that, for a while, writes a canary through every /proc/PID/{fd/N,cwd,root} it
   * can see and every `..` chain above it, to HOSTDIR (a host path) and in place.
   */
  const ATTACK = (hostDir: string, canary: string) => `
    i=0
    while [ $i -lt 8 ]; do
      for f in /proc/[0-9]*/fd/* /proc/[0-9]*/cwd /proc/[0-9]*/root; do
        (echo x > "$f/${canary}") 2>/dev/null && echo "WROTE $f/${canary}"
        for up in '' /.. /../.. /../../.. /../../../.. /../../../../.. /../../../../../.. /../../../../../../.. /../../../../../../../..; do
          (echo x > "$f$up${hostDir}/${canary}") 2>/dev/null && echo "WROTE $f$up${hostDir}/${canary}"
        done
      done
      i=$((i + 1))
    done
    ls -l /proc/[0-9]*/fd/ 2>&1
    touch /shared/attack-done`;

  for (const [variant, caps] of [
    ['appc’s default capabilities', 'a80425fb'],
    ['every capability, CAP_SYS_PTRACE too', undefined],
  ] as const) {
    test(`host fds through /proc/PID/fd: a pre-start handler’s background process finds none (${variant})`, async () => {
      const canary = `canary-${podSeq + 1}`;
      const hostDir = path.join(DATA, `host-${podSeq + 1}`);
      fs.mkdirSync(hostDir);
      fs.chmodSync(hostDir, 0o777);
      const check = (who: string, pid: string) =>
        `if readlink ${pid}/fd/0 >/dev/null 2>&1; then echo ${who}-fd-readable; else echo ${who}-fd-denied; fi >> /shared/log`;
      const pod = writePod({
        apps: [
          {
            name: 'main',
            caps,
            exec: sh(`n=0; while [ ! -e /shared/attack-done ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done; ${check('pid1', '/proc/1')}`),
            pre: [sh(`(${ATTACK(hostDir, canary)}) > /shared/attack.log 2>&1 & ${check('app-child', '/proc/$PPID')}`)],
            post: [sh(check('post-stop-runner', '/proc/$PPID'))],
          },
        ],
      });
      const lockFd = fs.openSync(path.join(pod.dir, 'lock'), 'w');
      let pid1Dirs: string[];
      try {
        const h = run(pod, { env: { PATH: '/bin', TSPOD_LOCK_FD: '7' }, extraFd: lockFd });
        pid1Dirs = dirFds(await podUp(pod));
        const r = await h.done;
        assert.equal(r.code, 0, r.err);
      } finally {
        fs.closeSync(lockFd);
      }
      const attack = fs.readFileSync(path.join(pod.shared, 'attack.log'), 'utf8');
      // (Through /proc/PID/{cwd,root} it lands in the pod's own root: fine, and checked below.)
      assert.ok(!attack.split('\n').some((l) => l.startsWith('WROTE') && l.includes(hostDir)), attack);
      if (caps) assert.doesNotMatch(attack, /^WROTE \/proc\/1\//m, 'pid 1 is out of reach');
      assert.deepEqual(fs.readdirSync(hostDir), [], 'nothing written to the host directory');
      assert.deepEqual(canariesOutside(pod, canary), [], 'no canary outside the pod');
      assert.deepEqual(pid1Dirs, [], 'pid 1 holds no directory fd');
      const log = fs.readFileSync(path.join(pod.shared, 'log'), 'utf8').split('\n').filter(Boolean).sort();
      if (caps) {
        // Not dumpable: without CAP_SYS_PTRACE, the pod cannot even list their fds.
        assert.deepEqual(log, ['app-child-fd-denied', 'pid1-fd-denied', 'post-stop-runner-fd-denied']);
      } else {
        assert.equal(log.length, 3, log.join('\n'));
      }
    });
  }

  test('a forged report from inside the pod cannot index past the apps (parse_uint limits)', async () => {
    // An app with every capability (CAP_SYS_PTRACE too) can open pid 1's report pipe
    // through /proc/1/fd and write lines the outer helper reads. Indices past the apps,
    // huge numbers and overlong lines must be ignored, not used.
    const forged = [
      'app 5 2',
      'exit 5 0',
      'exit 9 3',
      'exit 1 0',
      'app 18446744073709551615 1',
      'exit 18446744073709551616 1',
      'exit 0 256',
      'exit 0 99999999999999999999999',
      `exit 0 ${'7'.repeat(300)}`,
      'app 0 99999999999',
      'ready',
    ].join('\n');
    const pod = writePod({
      apps: [
        {
          name: 'main',
          exec: sh(
            `n=0; for f in /proc/1/fd/*; do case "$(readlink $f)" in pipe:*) printf '%s\\n' '${forged.replace(/\n/g, "' '")}' > $f && n=$((n+1));; esac; done; echo forged=$n; sleep 0.3; exit 4`,
          ),
        },
      ],
    });
    const r = await run(pod).done;
    assert.equal(r.code, 4, r.err);
    assert.match(r.out, /^forged=[1-9]/m, 'the app reached the report pipe');
    assert.deepEqual(fs.readdirSync(pod.status), ['main']);
    assert.equal(fs.readFileSync(path.join(pod.status, 'main'), 'utf8'), '4\n');
    assert.deepEqual(fs.readdirSync(pod.appsPid), ['main']);
    // Huge values in plan fields are refused too, not wrapped around.
    for (const [field, value] of [
      ['app-user', '4294967295'],
      ['app-user', '18446744073709551617'],
      ['app-supplementary-gids', '99999999999999999999'],
      ['app-capabilities', '1ffffffffffffffff'],
    ]) {
      const bad = path.join(pod.dir, 'bad-plan');
      fs.writeFileSync(bad, fs.readFileSync(pod.plan, 'utf8').replace(new RegExp(`^${field} .*$`, 'm'), `${field} ${value}`));
      const b = await start(['run', bad]).done;
      assert.equal(b.code, 254, `${field} ${value}: ${b.err}`);
      assert.match(b.err, /^tspod-helper: plan .* line \d+: bad /, `${field} ${value}`);
    }
  });

  test('app-seccomp: the filter is loaded last, in the app and its handlers; bad fields are refused', async () => {
    const probe = 'grep "^Seccomp:" /proc/self/status; grep "^NoNewPrivs:" /proc/self/status; unshare -U true 2>&1 || echo unshare-failed';
    const pod = writePod({
      apps: [{ name: 'main', exec: sh(probe), user: '1000', group: '1000', pre: [sh('grep "^Seccomp:" /proc/self/status >&2')], seccomp: ['remove', '38', 'unshare,swapoff'] }],
    });
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Seccomp:\s+2$/m);
    assert.match(r.out, /^NoNewPrivs:\s+0$/m, 'no_new_privs is not forced');
    assert.match(r.out, /unshare\(0x10000000\): Function not implemented/, 'errno 38 (ENOSYS) from the filter');
    assert.match(r.err, /^Seccomp:\s+2$/m, 'the pre-start handler has it too');
    const retain = writePod({ apps: [{ name: 'main', exec: ['/bin/busybox', 'mkdir', '/x'], seccomp: ['retain', '1', '-'] }] });
    const rr = await run(retain).done;
    assert.notEqual(rr.code, 0, `nothing but execve and exit is allowed: ${rr.err}`);
    for (const value of ['deny 1 read', 'remove 0 read', 'remove 4096 read', 'remove EPERM read', 'remove 1 read,no_such_syscall', 'remove 1']) {
      const bad = path.join(pod.dir, 'bad-plan');
      fs.writeFileSync(bad, fs.readFileSync(pod.plan, 'utf8').replace(/^app-seccomp .*$/m, `app-seccomp ${value}`));
      const b = await start(['run', bad]).done;
      assert.equal(b.code, 254, `${value}: ${b.err}`);
      assert.match(b.err, /^tspod-helper: plan .* line \d+: /, value);
    }
  });

  test('cgroup steps: the outer helper makes the cgroups (parents too), writes them and joins init before pid 1; at exit it leaves and removes them; a failing step undoes them (254)', async () => {
    const pidsRoot = '/sys/fs/cgroup/pids';
    if (!fs.existsSync(path.join(pidsRoot, 'cgroup.procs'))) return; // no v1 pids hierarchy here
    const id = randomUUID();
    const pod = path.join(pidsRoot, 'tspod', id);
    const app = path.join(pod, 'app-main');
    const own = /^\d+:pids:(.*)$/m.exec(fs.readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
    const steps = [
      line('cgroup-make', pod),
      line('cgroup-make', path.join(pod, 'init')),
      line('cgroup-make', app),
      line('cgroup-write', path.join(app, 'pids.max'), '50'),
      line('cgroup-write', path.join(app, 'no-such-file'), '1', 'optional'),
      line('cgroup-join', path.join(pod, 'init')),
      line('cgroup-leave', path.join(pidsRoot, own)),
      line('cgroup-remove', path.join(pod, 'init')),
      line('cgroup-remove', pod),
    ].join('\n');
    const withSteps = (plan: string, extra: string) => fs.readFileSync(plan, 'utf8').replace(/^stdin .*$/m, (m) => `${m}\n${extra}`);
    try {
      const p = writePod({ namespaces: 'mnt,pid,uts,ipc,cgroup', apps: [{ name: 'main', exec: sh('echo ready; sleep 2'), cgroups: [app] }] });
      fs.writeFileSync(p.plan, withSteps(p.plan, steps));
      const r = run(p);
      const pid1 = await waitFor('the pod pid', () => fs.existsSync(path.join(p.dir, 'pid')) && Number(fs.readFileSync(path.join(p.dir, 'pid'), 'utf8')));
      assert.match(fs.readFileSync(`/proc/${pid1}/cgroup`, 'utf8'), new RegExp(`:pids:/tspod/${id}/init$`, 'm'), 'pid 1 is in the init cgroup');
      assert.match(fs.readFileSync(`/proc/${r.child.pid}/cgroup`, 'utf8'), new RegExp(`:pids:/tspod/${id}/init$`, 'm'), 'so is the outer helper');
      assert.equal(fs.readFileSync(path.join(app, 'pids.max'), 'utf8').trim(), '50');
      const done = await r.done;
      assert.equal(done.code, 0, done.err);
      assert.equal(fs.existsSync(pod), false, 'everything of the pod is removed at exit');
      // A step that fails: what the steps made is removed, nothing runs.
      const q = writePod({ apps: [{ name: 'main', exec: sh('echo ran') }] });
      fs.writeFileSync(q.plan, withSteps(q.plan, steps.replace(/ optional$/m, '')));
      const f = await start(['run', q.plan]).done;
      assert.equal(f.code, 254, f.err);
      assert.match(f.err, /^tspod-helper: cgroups: writing to .*no-such-file the value 1: /m);
      assert.doesNotMatch(f.out, /ran/);
      assert.equal(fs.existsSync(pod), false, 'the failed steps left nothing');
      for (const bad of [`cgroup-write ${path.join(app, 'pids.max')} 1 sometimes`, 'cgroup-make relative/dir', `cgroup-join ${pod}/../x`]) {
        fs.writeFileSync(q.plan, withSteps(writePod({ apps: [{ name: 'main', exec: sh('true') }] }).plan, bad));
        const b = await start(['run', q.plan]).done;
        assert.equal(b.code, 254, `${bad}: ${b.err}`);
        assert.match(b.err, /^tspod-helper: plan .* line \d+: /, bad);
      }
    } finally {
      for (const d of [app, path.join(pod, 'init'), pod]) {
        try {
          fs.rmdirSync(d);
        } catch {
          /* removed by the helper */
        }
      }
    }
  });

  test('app-cgroup: the app (and its handlers) join their cgroups before anything runs, in a cgroup namespace of their own; no fd of them reaches the app; removed at exit; bad directives refused', async () => {
    const pidsRoot = '/sys/fs/cgroup/pids';
    if (!fs.existsSync(path.join(pidsRoot, 'cgroup.procs'))) return; // no v1 pids hierarchy here
    const id = randomUUID();
    const parent = path.join(pidsRoot, 'tspod', id);
    const cg = path.join(parent, 'app-main');
    fs.mkdirSync(cg, { recursive: true });
    try {
      fs.writeFileSync(path.join(cg, 'pids.max'), '50');
      const probe = 'cat /proc/self/cgroup; readlink /proc/self/ns/cgroup; ls -l /proc/$$/fd; cat /proc/self/status | grep ^Pid; sleep 1';
      const pod = writePod({ namespaces: 'mnt,pid,uts,ipc,cgroup', apps: [{ name: 'main', exec: sh(probe), pre: [sh('grep pids /proc/self/cgroup >&2')], cgroups: [cg] }] });
      const r = run(pod);
      const apid = await waitFor('the app pid', () => fs.existsSync(path.join(pod.dir, 'apps-pid', 'main')) && Number(fs.readFileSync(path.join(pod.dir, 'apps-pid', 'main'), 'utf8')));
      assert.match(fs.readFileSync(`/proc/${apid}/cgroup`, 'utf8'), new RegExp(`:pids:/tspod/${id}/app-main$`, 'm'), 'the host sees the app in its cgroup');
      const done = await r.done;
      assert.equal(done.code, 0, done.err);
      assert.match(done.out, /^\d+:pids:\/$/m, 'the app sees its own cgroup as /');
      assert.notEqual(/cgroup:\[\d+\]/.exec(done.out)?.[0], nsOf('self', 'cgroup'), 'a cgroup namespace of its own');
      assert.doesNotMatch(done.out, /-> .*cgroup/, 'no cgroupfs fd in the app');
      assert.match(done.err, /^\d+:pids:\/$/m, 'the pre-start handler is in it too');
      assert.ok(!fs.existsSync(cg), 'the outer helper removed the app cgroup at exit');
      for (const bad of ['app-cgroup relative/dir', 'app-cgroup /a/../b']) {
        const plan = path.join(pod.dir, 'bad-plan');
        fs.writeFileSync(plan, fs.readFileSync(pod.plan, 'utf8').replace(/^app-cgroup .*$/m, bad));
        const b = await start(['run', plan]).done;
        assert.equal(b.code, 254, `${bad}: ${b.err}`);
        assert.match(b.err, /^tspod-helper: plan .* line \d+: /, bad);
      }
      const many = path.join(pod.dir, 'many-plan');
      fs.writeFileSync(many, fs.readFileSync(pod.plan, 'utf8').replace(/^app-cgroup .*$/m, Array.from({ length: 17 }, () => `app-cgroup ${cg}`).join('\n')));
      const m = await start(['run', many]).done;
      assert.equal(m.code, 254, m.err);
      assert.match(m.err, /more than 16 app-cgroup directives/);
      // A missing cgroup: pid 1 cannot open it, nothing runs (254)
      fs.writeFileSync(many, fs.readFileSync(pod.plan, 'utf8').replace(/^app-cgroup .*$/m, `app-cgroup ${cg}-missing`));
      const gone = await start(['run', many]).done;
      assert.equal(gone.code, 254, gone.err);
      assert.match(gone.err, /app main: cgroup .*app-main-missing\/cgroup.procs: No such file or directory/);
    } finally {
      for (const d of [cg, parent]) {
        try {
          fs.rmdirSync(d);
        } catch {
          /* gone (the helper removed the app's) */
        }
      }
    }
  });

  test('app-device-filter: a BPF device program on the app\'s cgroup2 allows exactly its rules (EPERM otherwise), removed with the cgroup; bad rules refused', async () => {
    const unified = '/sys/fs/cgroup/unified';
    const root = fs.existsSync(path.join(unified, 'cgroup.procs')) ? unified : '/sys/fs/cgroup';
    if (fs.statfsSync(root).type !== 0x63677270) return; // no cgroup2 here
    const id = randomUUID();
    const parent = path.join(root, 'tspod', id);
    const cg = path.join(parent, 'app-main');
    fs.mkdirSync(cg, { recursive: true });
    try {
      const probe = [
        'head -c 1 /dev/zero | wc -c',
        'echo x > /dev/zero && echo zero-write-ok',
        'head -c 1 /dev/urandom | wc -c',
        'echo x > /dev/null && echo null-write-ok',
        'mknod /tmp/n c 1 3 && echo null-mknod-ok',
        'mknod /tmp/z c 1 5 && echo zero-mknod-ok',
        'true',
      ].join('; ');
      const pod = writePod({ apps: [{ name: 'main', exec: sh(`mkdir -p /tmp; ${probe}`), cgroups: [cg], deviceFilter: [cg, 'c:1:5:r,c:1:3:rwm'] }] });
      const done = await run(pod).done;
      assert.equal(done.code, 0, done.err);
      assert.match(done.out, /^1$/m, 'zero reads (r)');
      assert.doesNotMatch(done.out, /zero-write-ok/, 'zero does not write');
      assert.match(done.err, /can't create \/dev\/zero: Operation not permitted/);
      assert.match(done.err, /\/dev\/urandom: Operation not permitted/, 'urandom: no rule');
      assert.match(done.out, /^null-write-ok$/m);
      assert.match(done.out, /^null-mknod-ok$/m, 'm for null');
      assert.doesNotMatch(done.out, /zero-mknod-ok/, 'no m for zero');
      assert.ok(!fs.existsSync(cg), 'the cgroup (and its program) went at exit');
      for (const bad of ['c:1:3', 'x:1:3:r', 'c:1:3:rz', 'c:1:3:rr', 'c:1:3:', 'c:9999999:3:r', 'c:1:3:r:x', '-E-']) {
        const plan = path.join(pod.dir, 'bad-plan');
        fs.writeFileSync(plan, fs.readFileSync(pod.plan, 'utf8').replace(/^app-device-filter (\S+) .*$/m, `app-device-filter $1 ${bad}`));
        const b = await start(['run', plan]).done;
        assert.equal(b.code, 254, `${bad}: ${b.err}`);
        assert.match(b.err, /^tspod-helper: plan .* line \d+: app-device-filter: bad /, bad);
      }
      const twice = path.join(pod.dir, 'twice-plan');
      fs.writeFileSync(twice, fs.readFileSync(pod.plan, 'utf8').replace(/^(app-device-filter .*)$/m, '$1\n$1'));
      const tw = await start(['run', twice]).done;
      assert.equal(tw.code, 254, tw.err);
      assert.match(tw.err, /app-device-filter given twice/);
      // not a cgroup2 directory: the attach fails, nothing runs (254)
      fs.mkdirSync(cg);
      const notCg = path.join(pod.dir, 'notcg-plan');
      fs.writeFileSync(notCg, fs.readFileSync(pod.plan, 'utf8').replace(/^app-device-filter (\S+) /m, `app-device-filter ${pod.dir} `));
      const nc = await start(['run', notCg]).done;
      assert.equal(nc.code, 254, nc.err);
      assert.match(nc.err, /app main: attaching its device filter to .*: /);
    } finally {
      for (const d of [cg, parent]) {
        try {
          fs.rmdirSync(d);
        } catch {
          /* gone (the helper removed the app's) */
        }
      }
    }
  });

  test('the pod dies with its outer helper: SIGKILL to it kills pid 1 and every app', async () => {
    const pod = writePod({
      apps: [
        { name: 'main', exec: ['sleep', '1000'] },
        { name: 'other', exec: sh('trap "" TERM HUP INT; (sleep 1000 &); sleep 1000') },
      ],
    });
    const h = run(pod);
    const pid1 = await podUp(pod);
    const podPidNs = nsOf(pid1, 'pid');
    const apps = ['main', 'other'].map((a) => readInt(path.join(pod.appsPid, a))!);
    h.child.kill('SIGKILL');
    await h.done;
    const inPod = () =>
      fs.readdirSync('/proc').filter((p) => {
        try {
          return /^\d+$/.test(p) && fs.readlinkSync(`/proc/${p}/ns/pid`) === podPidNs;
        } catch {
          return false;
        }
      });
    await waitFor('every process of the pod to be gone', () => inPod().length === 0, 5000);
    for (const p of [pid1, ...apps]) assert.equal(fs.existsSync(`/proc/${p}`), false, `process ${p} is gone`);
  });

  test('set-up steps act below the pod root only: a target outside it is refused, nothing is made there', async () => {
    const outside = path.join(DATA, `outside-${podSeq + 1}`);
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, 'file'), 'host\n');
    const pod = writePod({ apps: [{ name: 'main', exec: ['/bin/true'] }] });
    const rootSibling = `${pod.root}-sibling`; // the root's name is a prefix of it, the root is not
    const cases: Array<[string, string[]]> = [
      ['mkdir', [line('mkdir', `${outside}/made`, '0755')]],
      ['touch', [line('touch', `${outside}/touched`, '0644')]],
      ['write', [line('write', `${outside}/file`, '0644', 'pwned\n')]],
      ['symlink', [line('symlink', '/etc/shadow', `${outside}/link`)]],
      ['chown', [line('chown', `${outside}/file`, '1234', '1234')]],
      ['mount', [line('mount', 'tmpfs', outside, 'tmpfs', '-', '-')]],
      ['mount', [line('mount', '-', outside, '-', 'remount,bind,rdonly', '-')]],
      ['mkdir', [line('mkdir', `${rootSibling}/x`, '0755')]],
    ];
    for (const [kind, steps] of cases) {
      const plan = path.join(pod.dir, 'plan-outside');
      fs.writeFileSync(plan, fs.readFileSync(pod.plan, 'utf8').replace(/^app main$/m, `${steps.join('\n')}\napp main`));
      const r = await start(['run', plan]).done;
      assert.equal(r.code, 254, `${steps}: ${r.err}`);
      assert.match(r.err, new RegExp(`^tspod-helper: plan .* line \\d+: ${kind} target \\S+ is not below the pod root ${pod.root}\\n$`), steps.join());
    }
    assert.deepEqual(fs.readdirSync(outside), ['file']);
    assert.equal(fs.readFileSync(path.join(outside, 'file'), 'utf8'), 'host\n');
    assert.equal(fs.statSync(path.join(outside, 'file')).uid, 0);
    assert.equal(fs.existsSync(rootSibling), false);
    // A path with ".." (an image volume like /../../tmp/x) never gets that far.
    const plan = path.join(pod.dir, 'plan-dotdot');
    fs.writeFileSync(plan, fs.readFileSync(pod.plan, 'utf8').replace(/^app main$/m, `${line('mkdir', `${pod.appRoot('main')}/../../../../x`, '0755')}\napp main`));
    const r = await start(['run', plan]).done;
    assert.equal(r.code, 254);
    assert.match(r.err, /^tspod-helper: plan .* line \d+: path ".*" must be without "\.\."\n$/);
  });

  test('image symlinks into /proc: set-up steps never write, touch or chown through them (the host’s hostname stays)', async () => {
    // No uts namespace: /proc/sys/kernel/hostname in the pod is the host's own.
    const hostname = fs.readFileSync('/proc/sys/kernel/hostname', 'utf8');
    const hosts = '127.0.0.1 pwned\n';
    const A = (pod: Pod) => pod.appRoot('main');
    const cases: Array<{ what: string; image: Record<string, string>; steps: (pod: Pod) => string[]; refused: boolean }> = [
      {
        what: '/etc/hosts -> /proc/sys/kernel/hostname, written: the link is replaced',
        image: { 'etc/hosts': '/proc/sys/kernel/hostname' },
        steps: (pod) => [line('mkdir', `${A(pod)}/etc`, '0755'), line('write', `${A(pod)}/etc/hosts`, '0644', hosts)],
        refused: false,
      },
      {
        what: '/etc/hosts -> ../proc/sys/kernel/hostname (relative), written',
        image: { 'etc/hosts': '../proc/sys/kernel/hostname' },
        steps: (pod) => [line('write', `${A(pod)}/etc/hosts`, '0644', hosts)],
        refused: false,
      },
      {
        what: '/etc -> /proc/sys/kernel: mkdir, touch and write below it',
        image: { etc: '/proc/sys/kernel' },
        steps: (pod) => [line('mkdir', `${A(pod)}/etc`, '0755'), line('touch', `${A(pod)}/etc/hostname`, '0644'), line('write', `${A(pod)}/etc/hosts`, '0644', hosts)],
        refused: true,
      },
      {
        what: '/etc -> /proc/sys/kernel: write alone',
        image: { etc: '/proc/sys/kernel' },
        steps: (pod) => [line('write', `${A(pod)}/etc/hostname`, '0644', 'pwned\n')],
        refused: true,
      },
      {
        what: '/etc/hostname -> /proc/sys/kernel/hostname: touched (a bind target)',
        image: { 'etc/hostname': '/proc/sys/kernel/hostname' },
        steps: (pod) => [line('touch', `${A(pod)}/etc/hostname`, '0644'), line('mount', `${A(pod)}/proc/sys/kernel/hostname`, `${A(pod)}/etc/hostname`, '-', 'bind', '-')],
        refused: true,
      },
      {
        what: '/etc/x -> /proc/sys/kernel/hostname: chowned',
        image: { 'etc/x': '/proc/sys/kernel/hostname' },
        steps: (pod) => [line('chown', `${A(pod)}/etc/x`, '1000', '1000')],
        refused: true,
      },
      {
        what: '/vol -> /proc/sys/kernel: a volume below it',
        image: { vol: '/proc/sys/kernel' },
        steps: (pod) => [line('mkdir', `${A(pod)}/vol/data`, '0755'), line('mount', pod.shared, `${A(pod)}/vol/data`, '-', 'bind', '-')],
        refused: true,
      },
      {
        what: '/vol -> /sys: a mount on it',
        image: { vol: '/sys' },
        steps: (pod) => [line('mount', 'tmpfs', `${A(pod)}/vol`, 'tmpfs', '-', '-')],
        refused: true,
      },
    ];
    try {
      for (const c of cases) {
        const pod = writePod({ namespaces: 'mnt,pid,ipc', apps: [{ name: 'main', exec: sh('cat /etc/hosts') }] });
        const upper = path.join(pod.dir, 'upper-main');
        for (const [rel, target] of Object.entries(c.image)) {
          fs.mkdirSync(path.dirname(path.join(upper, rel)), { recursive: true });
          fs.symlinkSync(target, path.join(upper, rel));
        }
        fs.writeFileSync(pod.plan, fs.readFileSync(pod.plan, 'utf8').replace(/^app main$/m, `${c.steps(pod).join('\n')}\napp main`));
        const r = await run(pod).done;
        assert.equal(fs.readFileSync('/proc/sys/kernel/hostname', 'utf8'), hostname, `${c.what}: the host's hostname is unchanged`);
        if (c.refused) {
          assert.equal(r.code, 254, `${c.what}: ${r.err}`);
          assert.match(r.err, /^tspod-helper: plan .* line \d+: [^\n]+\n$/, c.what);
        } else {
          assert.equal(r.code, 0, `${c.what}: ${r.err}`);
          assert.equal(r.out, hosts, c.what);
          assert.ok(fs.lstatSync(path.join(upper, 'etc/hosts')).isFile(), `${c.what}: a regular file in the pod's own layer`);
        }
      }
    } finally {
      if (fs.readFileSync('/proc/sys/kernel/hostname', 'utf8') !== hostname) fs.writeFileSync('/proc/sys/kernel/hostname', hostname);
    }
  });

  test('sysctl: written in the pod’s own namespaces before the set-up steps; never a host one', async () => {
    const hostShmmax = fs.readFileSync('/proc/sys/kernel/shmmax', 'utf8');
    const hostForward = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
    const withSysctls = (pod: Pod, lines: string[]) =>
      fs.writeFileSync(pod.plan, fs.readFileSync(pod.plan, 'utf8').replace(/^(namespaces .*)$/m, `$1\n${lines.join('\n')}`));
    const pod = writePod({ namespaces: 'mnt,pid,uts,ipc,net', apps: [{ name: 'main', exec: sh('cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward') }] });
    withSysctls(pod, [line('sysctl', 'kernel.shmmax', '4242'), line('sysctl', 'net.ipv4.ip_forward', '1')]);
    const r = await run(pod).done;
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, '4242\n1\n');
    assert.equal(fs.readFileSync('/proc/sys/kernel/shmmax', 'utf8'), hostShmmax);
    assert.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), hostForward);
    const refused: Array<[string, string, RegExp]> = [
      ['mnt,pid,uts,ipc', 'net.ipv4.ip_forward', /sysctl net\.ipv4\.ip_forward needs the pod's own net namespace/],
      ['mnt,pid,uts', 'kernel.shmmax', /sysctl kernel\.shmmax needs the pod's own ipc namespace/],
      ['mnt,pid,uts,ipc,net', 'kernel.panic', /sysctl kernel\.panic is not a namespaced one/],
      ['mnt,pid,uts,ipc,net', 'net..x', /sysctl net\.\.x is not a namespaced one/],
    ];
    for (const [ns, name, re] of refused) {
      const bad = writePod({ namespaces: ns, apps: [{ name: 'main', exec: ['true'] }] });
      withSysctls(bad, [line('sysctl', name, '1')]);
      const b = await run(bad).done;
      assert.equal(b.code, 254, `${name}: ${b.err}`);
      assert.match(b.err, /^tspod-helper: plan .* line \d+: /, name);
      assert.match(b.err, re, name);
    }
    assert.equal(fs.readFileSync('/proc/sys/kernel/shmmax', 'utf8'), hostShmmax);
  });

  test('enter pins the processes it joins: a pid outside the pod, not a pod’s pid 1, gone or a zombie is refused', async () => {
    // The app leaves a zombie behind: its child exits and `sleep` (exec'd over the
    // shell) never reaps it.
    const pod = writePod({ apps: [{ name: 'main', exec: sh('(exit 0) & exec sleep 1000') }] });
    const h = run(pod);
    const host = spawn('sleep', ['1000'], { stdio: 'ignore' });
    live.add(host);
    host.on('close', () => live.delete(host));
    try {
      const pid1 = await podUp(pod);
      const app = readInt(path.join(pod.appsPid, 'main'))!;
      const zombie = await waitFor('the zombie', () => {
        const kids = fs.readFileSync(`/proc/${app}/task/${app}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
        return kids.find((k) => procStatus(k).State?.startsWith('Z'));
      });
      const canary = path.join(DATA, `enter-canary-${podSeq}`);
      const enter = (pid: number, appPid: number) =>
        start(['enter', `--pid=${pid}`, `--app-pid=${appPid}`, '--', '/bin/sh', '-c', `echo entered > ${canary}; echo entered`], {
          env: { PATH: '/bin:/usr/bin' },
        }).done;
      const cases: Array<[string, number, number, RegExp]> = [
        ['an app pid outside the pod', pid1, host.pid!, /is not in the pod of process/],
        ['a host process as the pod', host.pid!, host.pid!, /is not a pod's \(it is in this pid namespace\)/],
        ['the app as the pod', app, app, /is not a pod's pid 1/],
        ['no such process', 1073741823, 1073741823, /no such process/],
        ['a zombie of the pod', pid1, zombie, /has exited|namespace .*: the process has exited/],
      ];
      for (const [what, p1, ap, msg] of cases) {
        const r = await enter(p1, ap);
        assert.equal(r.code, 254, `${what}: ${r.out}${r.err}`);
        assert.match(r.err, /^tspod-helper: enter: [^\n]+\n$/, what);
        assert.match(r.err, msg, what);
        assert.equal(r.out, '', what);
      }
      assert.equal(fs.existsSync(canary), false, 'no command ran');
      const ok = await enter(pid1, app);
      assert.equal(ok.code, 0, ok.err);
      assert.equal(ok.out, 'entered\n');
      assert.equal(fs.existsSync(canary), false, 'the command ran in the pod, not on the host');
    } finally {
      host.kill('SIGKILL');
      h.child.kill('SIGTERM');
      await h.done;
    }
  });

  test('no mount leaked to the host', () => {
    assert.ok(podSeq > 20, 'the pods above ran');
    assert.deepEqual(ourHostMounts(), []);
  });
});

describe('tspod-helper net-release (a pod\'s CNI DELs at its exit)', { skip }, () => {
  let dir = '';
  before(() => {
    const base = process.env.TSPOD_TEST_ROOT || path.join(REPO, 'test/data');
    fs.mkdirSync(base, { recursive: true });
    dir = fs.mkdtempSync(path.join(base, `net-release-${process.pid}-`));
    // A stand-in plugin: logs its command, interface, stdin and whether fd 7 (the lock) reached it.
    fs.writeFileSync(
      path.join(dir, 'plugin'),
      `#!/bin/sh\n[ -n "$HANG" ] && exec sleep 30\nin=$(cat); [ -e /proc/self/fd/7 ] && fd=open || fd=closed\necho "$CNI_COMMAND $CNI_IFNAME $in lock=$fd" >> ${dir}/log\nexit \${FAIL:-0}\n`,
      { mode: 0o755 },
    );
  });
  after(() => {
    spawnSync(HELPER, ['netns', 'remove', path.join(dir, 'netns')]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A release file: one del step per entry (interface, extra env lines, stdin, timeout), then the namespace and the record. */
  function releaseFile(steps: Array<{ ifName: string; env?: string[]; input: string; timeout?: number }>): string {
    const lines = ['tspod-net-release 1', 'close 7'];
    for (const s of steps) {
      lines.push(`del ${s.timeout ?? 10} ${path.join(dir, 'plugin')}`, 'env CNI_COMMAND=DEL', `env CNI_IFNAME=${s.ifName}`, ...(s.env ?? []).map((e) => `env ${e}`));
      lines.push(`fail tspod: network of ${s.ifName}: DEL failed`, `input ${Buffer.byteLength(s.input)}`, s.input);
    }
    lines.push(`netns ${path.join(dir, 'netns')}`, `unlink ${path.join(dir, 'record')}`);
    const file = path.join(dir, 'release');
    fs.writeFileSync(file, lines.join('\n') + '\n');
    return file;
  }

  function release(file: string, code: number): { status: number | null; stderr: string } {
    const lock = fs.openSync(path.join(dir, 'lock'), 'w');
    try {
      const r = spawnSync(HELPER, ['net-release', file, `--exit-code=${code}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', lock], timeout: 60_000 });
      return { status: r.status, stderr: r.stderr };
    } finally {
      fs.closeSync(lock);
    }
  }

  function fresh(): void {
    spawnSync(HELPER, ['netns', 'remove', path.join(dir, 'netns')]);
    fs.rmSync(path.join(dir, 'log'), { force: true });
    fs.writeFileSync(path.join(dir, 'record'), '{}');
    const made = spawnSync(HELPER, ['netns', 'create', path.join(dir, 'netns')], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
  }

  test('each DEL in order with its environment and stdin, without the lock; then the namespace and the record go; the pod\'s code is its exit code', () => {
    fresh();
    const r = release(releaseFile([{ ifName: 'eth1', input: '{"a": "é\nb"}' }, { ifName: 'eth0', input: '{"z":1}' }]), 42);
    assert.equal(r.status, 42, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(fs.readFileSync(path.join(dir, 'log'), 'utf8'), 'DEL eth1 {"a": "é\nb"} lock=closed\nDEL eth0 {"z":1} lock=closed\n');
    assert.ok(!fs.existsSync(path.join(dir, 'netns')) && !fs.existsSync(path.join(dir, 'record')), 'namespace file and record removed');
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(dir, 'netns')), 'no nsfs mount left');
  });

  test('a DEL that fails or hangs (killed at its timeout) is reported; the others still run; the namespace and the record stay for gc; the code stands', () => {
    fresh();
    const file = releaseFile([
      { ifName: 'eth2', input: '{}', env: ['FAIL=3'] },
      { ifName: 'eth1', input: '{}', env: ['HANG=1'], timeout: 1 },
      { ifName: 'eth0', input: '{}' },
    ]);
    const r = release(file, 0);
    assert.equal(r.status, 0);
    assert.match(r.stderr, /^tspod: network of eth2: DEL failed\n/m);
    assert.match(r.stderr, /^tspod-helper: net-release: .*plugin: no answer in 1 s \(killed\)\ntspod: network of eth1: DEL failed\n/m);
    assert.equal(fs.readFileSync(path.join(dir, 'log'), 'utf8'), 'DEL eth2 {} lock=closed\nDEL eth0 {} lock=closed\n');
    assert.ok(fs.existsSync(path.join(dir, 'netns')) && fs.existsSync(path.join(dir, 'record')), 'kept for gc');
  });

  test('a file it cannot read or parse: one line, the code stands, nothing removed', () => {
    fresh();
    const bad = path.join(dir, 'bad');
    for (const [text, msg] of [
      ['#!/bin/bash\nexit 0\n', /not a tspod-net-release 1 file/],
      ['tspod-net-release 1\ndel 10 /bin/true\ninput 99\n{}\n', /an input shorter than it says/],
      ['tspod-net-release 1\nrm -rf /\n', /an unknown line/],
    ] as const) {
      fs.writeFileSync(bad, text);
      const r = release(bad, 7);
      assert.equal(r.status, 7);
      assert.match(r.stderr, new RegExp(`^tspod-helper: net-release ${bad}: ${msg.source} \\(tspod gc releases the pod's networks\\)\\n$`));
    }
    const r = release(path.join(dir, 'missing'), 5);
    assert.equal(r.status, 5);
    assert.match(r.stderr, /No such file or directory/);
    assert.ok(fs.existsSync(path.join(dir, 'netns')) && fs.existsSync(path.join(dir, 'record')));
  });
});
