// Attacks from inside a default pod (issue 10 "Tests"): each test performs the
// attack, as the pod's root with the default isolation, through `run` and through
// `tspod enter`, and asserts that it fails. test/attack/attack.c (built static on
// the host, bound in read-only at /x) does what busybox cannot. Needs root and gcc.
//
//  - a device node for a host disk (a loop device holding a secret the test wrote;
//    the host reads it through the same node) in every place a pod can write: the
//    overlay root, /tmp, /dev, /dev/shm, a host volume, an empty volume, and the
//    rootfs of a --no-overlay pod: nothing read (the app's device cgroup refuses the
//    mknod, and every one of those places is nodev besides; the cgroup alone, where
//    nodev is not: isolation-devices.test.ts); and a mount of the host's block
//    devices: refused (no CAP_SYS_ADMIN)
//  - proc mounted over /proc/sys (or anywhere), /proc/sys remounted read-write;
//    /proc/sysrq-trigger written; a kernel module loaded (insmod, finit_module,
//    init_module); /proc/kcore read
//  - the helper (pid 1 of the pod) traced: PTRACE_ATTACH/SEIZE, process_vm_readv,
//    /proc/1/mem, environ, root, cwd, fd, exe (opened for writing or as O_PATH)
//  - a host process reached: kill -0 of host pids, /proc listing only the pod's pids
//  - runc CVE-2019-5736: the pod plants `#!/proc/self/exe` and waits for `tspod
//    enter` to exec it (the kernel then runs the helper itself inside the pod); a
//    pod process spinning on the next pids grabs /proc/PID/exe, tries to open it for
//    writing and to chmod it: it only ever reaches the helper's sealed memfd copy,
//    and the host's helper binaries (bin/tspod-helper, the stage1 image's) are the
//    same bytes, mode and ctime afterwards.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, REPO_ROOT, type DataDir } from './harness/index.js';
import { busyboxAci, SKIP as PODS_SKIP, removeScratchDirs, scratchDir, withProbedPod, type ProbedPod } from './pods-util.js';

const hasTools = ['gcc', 'losetup'].every((t) => spawnSync(t, ['--version'], { stdio: 'ignore' }).status === 0);
const SKIP = PODS_SKIP || (!hasTools && 'needs gcc and losetup');

let dd: DataDir;
let bin = ''; // the static attack program: a read-only volume at /x
let writable = ''; // a writable host volume at /w
let loop = ''; // /dev/loopN holding SECRET
let loopDev = { major: 0, minor: 0 };
let rootDev = { major: 0, minor: 0 }; // the host's root file system's device
const SECRET = `tspod-attack-secret-${crypto.randomBytes(6).toString('hex')}`;

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'attacks');
  bin = scratchDir('attacks-bin');
  writable = scratchDir('attacks-w');
  const cc = spawnSync('gcc', ['-static', '-O2', '-o', path.join(bin, 'attack'), path.join(REPO_ROOT, 'test/attack/attack.c')], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const img = path.join(scratchDir('attacks-img'), 'disk.img');
  fs.writeFileSync(img, Buffer.concat([Buffer.from(SECRET), Buffer.alloc(1 << 20)]));
  const lo = spawnSync('losetup', ['-f', '--show', img], { encoding: 'utf8' });
  assert.equal(lo.status, 0, lo.stderr);
  loop = lo.stdout.trim();
  const rdev = fs.statSync(loop).rdev;
  loopDev = { major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00) };
  const dev = fs.statSync('/').dev;
  rootDev = { major: Math.floor(dev / 256) & 0xfff, minor: (dev & 0xff) | ((dev >> 12) & 0xfff00) };
});
after(async () => {
  if (loop) spawnSync('losetup', ['-d', loop]);
  removeScratchDirs();
  if (dd) await dd.remove();
});

/** The attack program on the host (the precondition: the attack works there). */
function hostAttack(...args: string[]): string {
  const r = spawnSync(path.join(bin, 'attack'), args, { encoding: 'utf8' });
  return r.stdout;
}

const VOLUMES = () => [`--volume=x,kind=host,source=${bin},readOnly=true`, `--volume=w,kind=host,source=${writable}`, '--volume=e,kind=empty'];
const MOUNTS = ['--mount=volume=x,target=/x', '--mount=volume=w,target=/w', '--mount=volume=e,target=/e'];

/** Every place a pod can create a file. */
const WRITABLE = ['/', '/tmp', '/dev', '/dev/shm', '/w', '/e'];

/** sh lines running the attacks (their output are `probe.attack[]=` lines). */
function attackScript(hostPids: number[]): string {
  const a = (...args: string[]) => `l attack /x/attack ${args.join(' ')}`;
  const sh = (label: string, cmd: string) => `l attack sh -c '${cmd} 2>&1 && echo "result ${label}: ok" || echo "result ${label}: failed"'`;
  return [
    'busybox mkdir -p /tmp',
    // device nodes for the host's disk, everywhere the pod can write
    ...WRITABLE.map((d) => a('blk', d, String(loopDev.major), String(loopDev.minor))),
    // mounting a host block device (and proc over /proc/sys)
    'busybox mkdir -p /tmp/mnt; busybox mknod /tmp/blk-loop b ' + `${loopDev.major} ${loopDev.minor}` + '; busybox mknod /tmp/blk-root b ' + `${rootDev.major} ${rootDev.minor}`,
    sh('mount-loop', 'busybox mount -o ro /tmp/blk-loop /tmp/mnt'),
    sh('mount-root', 'busybox mount -t ext4 -o ro /tmp/blk-root /tmp/mnt'),
    sh('mount-proc-sys', 'busybox mount -t proc proc /proc/sys'),
    sh('mount-proc-tmp', 'busybox mount -t proc proc /tmp/mnt'),
    sh('remount-proc-sys', 'busybox mount -o remount,rw /proc/sys'),
    sh('sysctl-write', 'v=$(cat /proc/sys/kernel/panic); printf "%s\\n" "$v" > /proc/sys/kernel/panic'),
    'p mnt-entries "$(busybox ls -A /tmp/mnt | busybox wc -l)"',
    'p proc-sys-mounts "$(busybox grep -c " /proc/sys " /proc/self/mountinfo)"',
    // kernel interfaces
    sh('sysrq', 'echo h > /proc/sysrq-trigger'),
    sh('insmod', 'busybox insmod /x/attack'),
    a('finit', '/x/attack'),
    a('init'),
    a('read', '/proc/kcore'),
    // the helper: pid 1 of the pod
    a('ptrace', '1'),
    a('seize', '1'),
    a('vmread', '1', '400000'),
    ...['mem', 'environ', 'exe', 'cwd/', 'root/'].map((f) => a('read', `/proc/1/${f}`)),
    a('openw', '/proc/1/exe'),
    a('opath', '/proc/1/exe'),
    sh('ls-root', 'busybox ls /proc/1/root/'),
    // its fd numbers can be listed (same uid), never opened
    ...['0', '1', '2', '3', '4', '5', '6'].map((n) => a('read', `/proc/1/fd/${n}`)),
    // host processes
    ...hostPids.map((pid) => a('kill0', String(pid))),
    'p pids "$(busybox ls /proc | busybox grep -E "^[0-9]+$" | busybox tr "\\n" " ")"',
    'l attack busybox grep CapBnd /proc/self/status',
  ].join('\n');
}

/** Asserts that every attack failed; `how` names the way in (run, enter, --no-overlay). */
function checkAttacks(lines: string[], how: string, places = WRITABLE): void {
  const all = lines.join('\n');
  const line = (prefix: string) => {
    const l = lines.find((x) => x.startsWith(prefix));
    assert.ok(l, `${how}: no "${prefix}" line in:\n${all}`);
    return l;
  };
  assert.ok(!all.includes(SECRET), `${how}: the host disk's secret was read:\n${all}`);
  for (const d of places) {
    const node = `${d === '/' ? '' : d}/tspod-blk`;
    const l = lines.find((x) => x.startsWith(`read ${node}:`)) ?? line(`mknod ${node}:`);
    assert.doesNotMatch(l, /: ok/, `${how}: ${l}`);
    if (l.startsWith('read')) assert.match(l, /Permission denied/, `${how}: a device node in ${d} cannot be opened (nodev): ${l}`);
    else assert.match(l, /Operation not permitted/, `${how}: the device cgroup refuses the node in ${d}: ${l}`);
  }
  for (const k of ['mount-loop', 'mount-root', 'mount-proc-sys', 'mount-proc-tmp', 'remount-proc-sys', 'sysctl-write', 'sysrq', 'insmod', 'ls-root']) {
    assert.match(line(`result ${k}: `), /: failed$/, `${how}: ${k} must fail:\n${all}`);
  }
  for (const l of lines.filter((x) => x.startsWith('read /proc/1/fd/'))) assert.match(l, /Permission denied|No such file/, `${how}: ${l}`);
  assert.ok(lines.some((x) => /^read \/proc\/1\/fd\/\d: Permission denied$/.test(x)), `${how}: pid 1's fds are closed to the pod:\n${all}`);
  assert.match(all, /Read-only file system/, `${how}: /proc/sys stays read-only`);
  for (const p of ['finit /x/attack', 'init bogus', 'read /proc/kcore', 'ptrace 1', 'seize 1', 'vmread 1', 'openw /proc/1/exe', 'opath /proc/1/exe']) {
    const l = line(`${p}:`);
    if (p === 'read /proc/kcore' && /: ok 0 $/.test(l)) continue; // masked by an empty file: nothing read
    assert.doesNotMatch(l, /: ok/, `${how}: ${l}`);
  }
  for (const f of ['mem', 'environ', 'exe', 'cwd/', 'root/']) assert.match(line(`read /proc/1/${f}:`), /Permission denied/, `${how}: /proc/1/${f}`);
  assert.match(line('ptrace 1:'), /Operation not permitted/);
  for (const l of lines.filter((x) => x.startsWith('kill0 '))) assert.match(l, /No such process/, `${how}: a host pid is out of reach: ${l}`);
  const capbnd = /CapBnd:\s*([0-9a-f]+)/.exec(all);
  assert.ok(capbnd, all);
  for (const bit of [16 /* SYS_MODULE */, 17 /* SYS_RAWIO */, 19 /* SYS_PTRACE */, 21 /* SYS_ADMIN */]) {
    assert.equal((BigInt(`0x${capbnd[1]}`) >> BigInt(bit)) & 1n, 0n, `${how}: capability ${bit} is not in the bounding set`);
  }
}

function checkPids(probe: { get(k: string): string }, how: string, hostPids: number[]): void {
  const pids = probe.get('pids').trim().split(/\s+/).map(Number);
  assert.ok(pids.includes(1), `${how}: pid 1 is the pod's: ${pids}`);
  for (const h of hostPids) assert.ok(!pids.includes(h), `${how}: host pid ${h} is not listed: ${pids}`);
  assert.ok(pids.length < 20, `${how}: only the pod's few processes: ${pids}`);
}

describe('attacks from inside a default pod', { skip: SKIP }, () => {
  test('precondition: the host reads the loop device through a node of its own', () => {
    const out = hostAttack('blk', writable, String(loopDev.major), String(loopDev.minor));
    assert.ok(out.includes(SECRET), out);
  });

  test('device nodes, mounts, kernel interfaces, the helper, host pids: run and enter', async () => {
    const hostPids = [process.pid, process.ppid];
    const extra = attackScript(hostPids);
    await withProbedPod(dd, { podFlags: VOLUMES(), appFlags: MOUNTS, extra }, async (pod: ProbedPod) => {
      checkAttacks(pod.run.lines('attack'), 'run');
      checkPids(pod.run, 'run', [...hostPids, pod.bg.pid]);
      const entered = await pod.enter(undefined, extra);
      checkAttacks(entered.lines('attack'), 'enter');
      checkPids(entered, 'enter', [...hostPids, pod.bg.pid]);
    });
  });

  test('device nodes in the rootfs of a --no-overlay pod', async () => {
    const extra = [
      `l attack /x/attack blk / ${loopDev.major} ${loopDev.minor}`,
      `l attack /x/attack blk /tmp ${loopDev.major} ${loopDev.minor}`,
    ].join('\n');
    await withProbedPod(dd, { podFlags: ['--no-overlay', `--volume=x,kind=host,source=${bin},readOnly=true`], appFlags: ['--mount=volume=x,target=/x'], extra }, async (pod) => {
      for (const [how, probe] of [['run', pod.run], ['enter', await pod.enter(undefined, extra)]] as const) {
        const lines = probe.lines('attack');
        assert.ok(!lines.join('\n').includes(SECRET), `${how}: ${lines.join('\n')}`);
        for (const node of ['/tspod-blk', '/tmp/tspod-blk']) {
          const l = lines.find((x) => x.startsWith(`read ${node}:`) || x.startsWith(`mknod ${node}:`));
          assert.ok(l, `${how}: ${lines.join('\n')}`);
          // refused by the device cgroup (mknod), or where it is made, by nodev (read)
          assert.match(l, l.startsWith('read') ? /Permission denied/ : /Operation not permitted/, `${how} --no-overlay: ${l}`);
        }
        assert.ok(probe.mounts().get('/')!.options.includes('nodev'), `${how}: the copied rootfs is nodev`);
      }
    });
  });

  test('CVE-2019-5736: a helper exec’d into the pod by enter exposes only its sealed memfd copy', async () => {
    const beforeAttack = helperFingerprint();
    const extra = [
      'printf "#!/proc/self/exe\\n" > /evil && busybox chmod 755 /evil',
      '/x/attack hunt 120 &',
    ].join('\n');
    await withProbedPod(dd, { podFlags: VOLUMES(), appFlags: MOUNTS, extra }, async (pod) => {
      await waitForText(pod, /^hunt ready$/m);
      // Enter again and again until the hunter has met an entering process
      // before its exec (denied): how many tries that takes depends on the load.
      const seen = (out: string) => /^hunt (pid \d+ exe denied|done$)/m.test(out);
      let tries = 0;
      while (!seen(pod.bg.stdout()) && tries < 200) {
        tries++;
        const r = await dd.tspod(['enter', pod.uuid, '/evil']);
        // the helper ran inside the pod (usage, 254) or the hunter killed it (137)
        assert.ok([254, 137].includes(r.code), describeResult(r));
      }
      const out = pod.bg.stdout();
      if (!checkCaught(out, beforeAttack)) {
        assert.match(out, /^hunt pid \d+ exe denied: Permission denied$/m, `the hunter saw the entering process and was denied:\n${out}`);
      }
      // the enter child, before it execs, is not dumpable: its exe is closed to the pod
      assert.match(out, /^hunt pid \d+ exe denied: Permission denied$/m, out);
    });
    assert.deepEqual(helperFingerprint(), beforeAttack, 'the host’s helper binaries are unchanged (bytes, mode, owner, ctime)');
  });

  test('CVE-2019-5736 through run: an app’s post-stop handler `#!/proc/self/exe` reaches the memfd copy only', async () => {
    const beforeAttack = helperFingerprint();
    const evil = busyboxAci(scratchDir('attacks-evil'), 'evil', { exec: ['/bin/sleep', '2'], eventHandlers: [{ name: 'post-stop', exec: ['/evil'] }] }, {
      add: (root) => fs.writeFileSync(path.join(root, 'evil'), '#!/proc/self/exe\n', { mode: 0o755 }),
    });
    await withProbedPod(
      dd,
      { podFlags: ['--insecure-options=image', ...VOLUMES()], appFlags: MOUNTS, extra: '/x/attack hunt 30 &', more: [evil, '--name=evil'] },
      async (pod) => {
        await pod.bg.waitOutput(/^hunt done$/m, 'the hunter');
        const out = pod.bg.stdout();
        // the post-stop runner is not dumpable until it execs; after, it is the sealed copy
        if (!checkCaught(out, beforeAttack)) assert.match(out, /^hunt pid \d+ exe denied: Permission denied$/m, out);
      },
    );
    assert.deepEqual(helperFingerprint(), beforeAttack, 'the host’s helper binaries are unchanged (bytes, mode, owner, ctime)');
  });
});

/** The repo's and the store's helper binaries: bytes, mode, owner, ctime, inode. */
function helperFingerprint(): Array<Record<string, unknown>> {
  const store = fs.readdirSync(path.join(dd.path, 'cas', 'layers')).map((l) => path.join(dd.path, 'cas', 'layers', l, 'rootfs', 'tspod-helper'));
  const helpers = [path.join(REPO_ROOT, 'bin', 'tspod-helper'), ...store.filter((f) => fs.existsSync(f))];
  assert.ok(helpers.length >= 2, `the repo's and the store's helper: ${helpers}`);
  return helpers.map((f) => {
    const st = fs.statSync(f);
    return { f, sha: crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex'), mode: st.mode, uid: st.uid, gid: st.gid, ctime: st.ctimeMs, ino: st.ino };
  });
}

/** When the hunter caught a helper process: it was the sealed copy, never a host file. Returns whether it caught one. */
function checkCaught(out: string, host: Array<Record<string, unknown>>): boolean {
  const caught = /^hunt caught pid \d+ exe (.*) dev (\d+):(\d+) ino (\d+) mode/m.exec(out);
  if (!caught) return false;
  assert.match(caught[1], /^\/memfd:tspod-helper \(deleted\)$/, `the pod reached the helper's own copy only:\n${out}`);
  for (const h of host) assert.notEqual(Number(caught[4]), h.ino, `not the inode of ${String(h.f)}`);
  assert.match(out, /^hunt openw running: Text file busy$/m, out);
  const written = /^hunt write (running|exited): (.*)$/m.exec(out);
  if (written) assert.match(written[2], /Operation not permitted/, `the copy is sealed against writes:\n${out}`);
  return true;
}

async function waitForText(pod: ProbedPod, re: RegExp): Promise<void> {
  await pod.bg.waitOutput(re, String(re));
}
