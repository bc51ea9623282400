// seccomp (issue 10 item 2): the default filter (rkt's default blacklist, EPERM),
// the seccomp-remove-set / -retain-set isolators of an image with errno and the
// @appc.io groups, rkt's --seccomp flag (which replaces the image's), and
// --insecure-options=seccomp; seen by `run` and by `enter`, which must get the
// app's filter. Every blocked syscall here is one that would be harmless if it
// went through (unshare into new namespaces, swapoff of a missing file, mkdir in
// the app's own rootfs). Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, type DataDir } from './harness/index.js';
import { busyboxAci, failsWith, SKIP, ok, podsTree, removeScratchDirs, scratchDir, withProbedPod, type Probe } from './pods-util.js';

let dd: DataDir;
let work = '';

/** NAME.aci: the busybox tree with these isolators (exec is given per run). */
const makeAci = (name: string, isolators: unknown[]): string => busyboxAci(work, `seccomp-${name}`, { exec: ['/bin/true'], isolators });

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'isolation-seccomp');
  work = scratchDir('isolation-seccomp');
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

/**
 * Probe lines: the seccomp mode and filter count, and what unshare(2) of a new
 * user namespace (needs no capability), unshare of a mount namespace (needs
 * CAP_SYS_ADMIN) and swapoff(2) of a missing file return.
 */
const PROBE = `
p seccomp "$(sed -n 's/^Seccomp:[[:space:]]*//p' /proc/self/status)"
p nnp "$(sed -n 's/^NoNewPrivs:[[:space:]]*//p' /proc/self/status)"
p unshare-user "$(unshare -U true 2>&1 && echo ok)"
p unshare-mnt "$(unshare -m true 2>&1 && echo ok)"
p swapoff "$(swapoff /no-such-swap 2>&1 && echo ok)"
`;

const EPERM = /Operation not permitted/;
const ENOSYS = /Function not implemented/;

function seccompMode(p: Probe): string {
  return p.get('seccomp');
}

describe('the default seccomp filter', { skip: SKIP }, () => {
  test('run and enter: mode 2, unshare and swapoff denied with EPERM', async () => {
    await withProbedPod(dd, { extra: PROBE }, async (pod) => {
      for (const [who, p] of [['run', pod.run], ['enter', await pod.enter(undefined, PROBE)]] as const) {
        assert.equal(seccompMode(p), '2', `${who}: Seccomp`);
        assert.equal(p.get('nnp'), '0', `${who}: no_new_privs stays off (the filter is loaded with CAP_SYS_ADMIN)`);
        // a user namespace needs no capability: only the filter stops it
        assert.match(p.get('unshare-user'), EPERM, `${who}: unshare -U`);
        assert.match(p.get('swapoff'), EPERM, `${who}: swapoff`);
      }
      const st = JSON.parse((await ok(dd, ['status', '--format=json', pod.uuid])).stdout);
      const sc = st.apps[0].seccomp;
      assert.equal(sc.mode, 'remove', 'status shows the filter');
      assert.equal(sc.errno, 'EPERM');
      for (const n of ['unshare', 'swapoff', 'mount', 'ptrace', 'kexec_load', 'bpf']) assert.ok(sc.syscalls.includes(n), n);
    });
  });

  test('a non-root app gets it too, without no_new_privs and without capabilities', async () => {
    await withProbedPod(dd, { extra: PROBE, appFlags: ['--user=1000', '--group=1000'] }, async (pod) => {
      for (const [who, p] of [['run', pod.run], ['enter', await pod.enter(undefined, PROBE)]] as const) {
        assert.equal(seccompMode(p), '2', `${who}: Seccomp`);
        assert.equal(p.get('nnp'), '0', `${who}: NoNewPrivs`);
        const caps = p.caps();
        for (const set of ['CapPrm', 'CapEff', 'CapInh', 'CapAmb']) assert.equal(caps[set], '0000000000000000', `${who}: ${set} (CAP_SYS_ADMIN, kept for loading the filter, is gone after exec)`);
        assert.match(p.get('unshare-user'), EPERM, `${who}: unshare -U`);
      }
    });
  });

  test('root keeps exactly the default capability set (CAP_SYS_ADMIN does not survive the exec)', async () => {
    await withProbedPod(dd, { extra: PROBE }, async (pod) => {
      for (const p of [pod.run, await pod.enter(undefined, PROBE)]) {
        const caps = p.caps();
        for (const set of ['CapPrm', 'CapEff', 'CapInh', 'CapBnd']) assert.equal(caps[set], '00000000a80425fb', set);
      }
    });
  });

  test('with all capabilities (--insecure-options=capabilities) the filter still denies unshare of a mount namespace; with =seccomp too it is allowed', async () => {
    await withProbedPod(dd, { extra: PROBE, podFlags: ['--insecure-options=capabilities'] }, async (pod) => {
      for (const [who, p] of [['run', pod.run], ['enter', await pod.enter(undefined, PROBE)]] as const) {
        assert.equal(seccompMode(p), '2', `${who}: Seccomp`);
        assert.match(p.get('unshare-mnt'), EPERM, `${who}: unshare -m`);
      }
    });
    await withProbedPod(dd, { extra: PROBE, podFlags: ['--insecure-options=capabilities,seccomp'] }, async (pod) => {
      for (const [who, p] of [['run', pod.run], ['enter', await pod.enter(undefined, PROBE)]] as const) {
        assert.equal(seccompMode(p), '0', `${who}: Seccomp`);
        assert.equal(p.get('unshare-mnt'), 'ok', `${who}: unshare -m`);
      }
    });
  });

  test('--insecure-options=seccomp (and all-run): no filter in run and enter', async () => {
    for (const opt of ['seccomp', 'all-run']) {
      await withProbedPod(dd, { extra: PROBE, podFlags: [`--insecure-options=${opt}`] }, async (pod) => {
        assert.equal(seccompMode(pod.run), '0', `${opt}: run`);
        assert.equal(pod.run.get('unshare-user'), 'ok', `${opt}: unshare -U in run`);
        assert.equal(seccompMode(await pod.enter(undefined, PROBE)), '0', `${opt}: enter`);
        const st = JSON.parse((await ok(dd, ['status', '--format=json', pod.uuid])).stdout);
        assert.equal(st.apps[0].seccomp, null, `${opt}: status says no filter`);
      });
    }
  });

  test('in a user namespace (--private-users), root and non-root: the same filter in run and enter', async () => {
    for (const appFlags of [[], ['--user=1000', '--group=1000']]) {
      await withProbedPod(dd, { extra: PROBE, podFlags: ['--private-users'], appFlags }, async (pod) => {
        for (const [who, p] of [['run', pod.run], ['enter', await pod.enter(undefined, PROBE)]] as const) {
          assert.equal(seccompMode(p), '2', `${who} ${appFlags.join(' ')}: Seccomp`);
          assert.equal(p.get('nnp'), '0', `${who} ${appFlags.join(' ')}: NoNewPrivs`);
          assert.match(p.get('unshare-user'), EPERM, `${who} ${appFlags.join(' ')}: unshare -U`);
        }
      });
    }
  });

  test('pre-start handlers get the app filter', async () => {
    const aci = busyboxAci(work, 'seccomp-handler', {
      exec: ['/bin/true'],
      eventHandlers: [{ name: 'pre-start', exec: ['/bin/sh', '-c', 'grep "^Seccomp:" /proc/self/status; unshare -U true'] }],
    });
    const r = await dd.tspod(['run', aci]);
    assert.match(r.stdout, /^Seccomp:\s+2$/m, describeResult(r));
    assert.match(r.stderr, EPERM, describeResult(r));
    assert.notEqual(r.code, 0, 'the handler failed, so the app did not start');
  });
});

describe('seccomp isolators and --seccomp', { skip: SKIP }, () => {
  test('image remove-set with errno=ENOSYS: those syscalls return ENOSYS, in run and enter', async () => {
    const aci = makeAci('remove-enosys', [{ name: 'os/linux/seccomp-remove-set', value: { set: ['unshare', 'swapoff'], errno: 'ENOSYS' } }]);
    await withProbedPod(dd, { image: aci, extra: PROBE }, async (pod) => {
      for (const [who, p] of [['run', pod.run], ['enter', await pod.enter(undefined, PROBE)]] as const) {
        assert.equal(seccompMode(p), '2', who);
        assert.match(p.get('unshare-user'), ENOSYS, `${who}: unshare`);
        assert.match(p.get('swapoff'), ENOSYS, `${who}: swapoff`);
      }
    });
  });

  test('a remove-set replaces the default: what it does not name is allowed', async () => {
    const aci = makeAci('remove-swapoff', [{ name: 'os/linux/seccomp-remove-set', value: { set: ['swapoff'] } }]);
    await withProbedPod(dd, { image: aci, extra: PROBE }, async (pod) => {
      assert.equal(pod.run.get('unshare-user'), 'ok');
      assert.match(pod.run.get('swapoff'), EPERM, 'errno defaults to EPERM');
    });
  });

  test('retain-set @appc.io/all: no filter; remove-set @appc.io/empty: the default filter', async () => {
    const all = makeAci('retain-all', [{ name: 'os/linux/seccomp-retain-set', value: { set: ['@appc.io/all'] } }]);
    await withProbedPod(dd, { image: all, extra: PROBE }, async (pod) => {
      assert.equal(seccompMode(pod.run), '0');
      assert.equal(seccompMode(await pod.enter(undefined, PROBE)), '0');
    });
    const empty = makeAci('remove-empty', [{ name: 'os/linux/seccomp-remove-set', value: { set: ['@appc.io/empty'] } }]);
    await withProbedPod(dd, { image: empty, extra: PROBE }, async (pod) => {
      assert.equal(seccompMode(pod.run), '2');
      assert.match(pod.run.get('unshare-user'), EPERM);
    });
  });

  test('retain-set: what busybox true needs runs; a syscall outside it (mkdir) is denied', async () => {
    // the syscalls of a static busybox `true` (strace); execve and exit_group are always allowed
    const needs = 'brk,arch_prctl,set_tid_address,set_robust_list,rseq,prlimit64,readlink,getrandom,mprotect,prctl,getuid,getpid,write';
    const aci = makeAci('retain', []);
    await ok(dd, ['run', aci, `--seccomp=mode=retain,${needs}`, '--exec=/bin/true']);
    const r = await dd.tspod(['run', aci, `--seccomp=mode=retain,${needs}`, '--exec=/bin/busybox', '--', 'mkdir', '/made-here']);
    assert.equal(r.code, 1, describeResult(r));
    assert.match(r.stderr, /mkdir: can't create directory '\/made-here': Operation not permitted/, describeResult(r));
    const enosys = await dd.tspod(['run', aci, `--seccomp=mode=retain,errno=ENOSYS,${needs}`, '--exec=/bin/busybox', '--', 'mkdir', '/made-here']);
    assert.match(enosys.stderr, /Function not implemented/, describeResult(enosys));
    // without the filter the same mkdir works
    await ok(dd, ['run', aci, '--exec=/bin/busybox', '--', 'mkdir', '/made-here']);
  });

  test('retain-set with rkt\'s default whitelist: a shell works, unshare is denied', async () => {
    const aci = makeAci('retain-whitelist', [{ name: 'os/linux/seccomp-retain-set', value: { set: ['@rkt/default-whitelist'], errno: 'EPERM' } }]);
    await withProbedPod(dd, { image: aci, extra: PROBE }, async (pod) => {
      for (const [who, p] of [['run', pod.run], ['enter', await pod.enter(undefined, PROBE)]] as const) {
        assert.equal(seccompMode(p), '2', who);
        assert.match(p.get('unshare-user'), EPERM, `${who}: unshare`);
      }
    });
  });

  test('--seccomp replaces the image\'s isolator and is stored in the pod manifest', async () => {
    const aci = makeAci('flag', [{ name: 'os/linux/seccomp-retain-set', value: { set: ['@appc.io/all'] } }]);
    await withProbedPod(dd, { image: aci, extra: PROBE, appFlags: ['--seccomp', 'mode=remove,errno=ENOSYS,unshare'] }, async (pod) => {
      assert.equal(seccompMode(pod.run), '2');
      assert.match(pod.run.get('unshare-user'), ENOSYS);
      assert.match(pod.run.get('swapoff'), /not permitted|No such file/, 'swapoff is not in this filter (it fails for want of CAP_SYS_ADMIN)');
      assert.doesNotMatch(pod.run.get('swapoff'), ENOSYS);
      const m = JSON.parse((await ok(dd, ['cat-manifest', pod.uuid])).stdout);
      assert.deepEqual(m.apps[0].app.isolators, [{ name: 'os/linux/seccomp-remove-set', value: { set: ['unshare'], errno: 'ENOSYS' } }]);
    });
    const uuid = (await ok(dd, ['prepare', aci, '--seccomp=mode=retain,@rkt/default-whitelist,unshare'])).stdout.trim();
    try {
      const m = JSON.parse((await ok(dd, ['cat-manifest', uuid])).stdout);
      assert.deepEqual(m.apps[0].app.isolators, [{ name: 'os/linux/seccomp-retain-set', value: { set: ['@rkt/default-whitelist', 'unshare'] } }]);
    } finally {
      await dd.tspod(['rm', uuid]);
    }
  });
});

describe('bad seccomp input is refused', { skip: SKIP }, () => {
  test('unknown syscall, bad errno, bad mode, malformed flag, bad isolators: one line, exit 254, no pod', async () => {
    const aci = makeAci('bad', []);
    const before = podsTree(dd.path).filter((p) => !p.startsWith('prepare/'));
    failsWith(await dd.tspod(['prepare', aci, '--seccomp=mode=remove,swapoff,no_such_call']), /unknown syscall "no_such_call"/);
    failsWith(await dd.tspod(['run', aci, '--seccomp=mode=retain,set_tls']), /unknown syscall "set_tls".*architecture/); // an arm syscall
    failsWith(await dd.tspod(['run', aci, '--seccomp=mode=remove,errno=EWHAT,swapoff']), /--seccomp: unknown errno "EWHAT"/);
    failsWith(await dd.tspod(['run', aci, '--seccomp=mode=deny,swapoff']), /--seccomp: unknown mode "deny"/);
    failsWith(await dd.tspod(['run', aci, '--seccomp=swapoff']), /--seccomp: .* must start with mode=/);
    failsWith(await dd.tspod(['run', aci, '--seccomp=mode=remove']), /--seccomp: no syscall given/);
    failsWith(await dd.tspod(['run', aci, '--seccomp=mode=remove,,swapoff']), /--seccomp: an empty syscall name/);
    failsWith(await dd.tspod(['run', aci, '--seccomp=mode=remove,@rkt/nothing']), /unknown syscall group "@rkt\/nothing"/);
    failsWith(await dd.tspod(['run', aci, '--seccomp=mode=remove,swap off']), /"swap off" is not a syscall name/);
    const badIso = makeAci('bad-iso', [{ name: 'os/linux/seccomp-remove-set', value: { set: ['swapoff', 'nope_nope'] } }]);
    failsWith(await dd.tspod(['prepare', badIso]), /app seccomp-bad-iso: unknown syscall "nope_nope"/);
    const badErrno = makeAci('bad-errno', [{ name: 'os/linux/seccomp-retain-set', value: { set: ['@rkt/default-whitelist'], errno: 'NOTANERRNO' } }]);
    failsWith(await dd.tspod(['run', badErrno]), /unknown errno "NOTANERRNO"/);
    const badShape = makeAci('bad-shape', [{ name: 'os/linux/seccomp-retain-set', value: ['read'] }]);
    failsWith(await dd.tspod(['run', badShape]), /the value must be/);
    const both = makeAci('both', [
      { name: 'os/linux/seccomp-retain-set', value: { set: ['@appc.io/all'] } },
      { name: 'os/linux/seccomp-remove-set', value: { set: ['swapoff'] } },
    ]);
    failsWith(await dd.tspod(['prepare', both]), /only one of/);
    assert.deepEqual(podsTree(dd.path).filter((p) => !p.startsWith('prepare/')), before, 'no pod left behind');
  });

  test('a pod manifest: the seccomp isolator of an app applies; a pod-level one is refused (per app only, as in rkt)', async () => {
    const id = (await ok(dd, ['fetch', '--full', makeAci('manifest', [])])).stdout.trim();
    const manifest = (podIsolators: unknown[], appIsolators: unknown[]) => {
      const file = path.join(work, `pod-${Math.random().toString(36).slice(2)}.json`);
      fs.writeFileSync(
        file,
        JSON.stringify({
          acKind: 'PodManifest',
          acVersion: '0.8.11',
          apps: [{ name: 'app', image: { id }, app: { exec: ['/bin/sh', '-c', 'grep "^Seccomp:" /proc/self/status; unshare -U true'], user: '0', group: '0', isolators: appIsolators } }],
          isolators: podIsolators,
        }),
      );
      return file;
    };
    const r = await dd.tspod(['run', `--pod-manifest=${manifest([], [{ name: 'os/linux/seccomp-remove-set', value: { set: ['unshare'], errno: 'ENOSYS' } }])}`]);
    assert.match(r.stdout, /^Seccomp:\s+2$/m, describeResult(r));
    assert.match(r.stderr, /Function not implemented/, describeResult(r));
    const before = podsTree(dd.path).filter((p) => !p.startsWith('prepare/'));
    failsWith(
      await dd.tspod(['run', `--pod-manifest=${manifest([{ name: 'os/linux/seccomp-retain-set', value: { set: ['@appc.io/all'] } }], [])}`]),
      /the pod: isolator "os\/linux\/seccomp-retain-set" is applied per app only/,
    );
    assert.deepEqual(podsTree(dd.path).filter((p) => !p.startsWith('prepare/')), before, 'no pod left behind');
  });
});
