// Kernel paths and oom-score-adj (issue 10 items 3 and 4): runc's masked and
// read-only kernel paths seen from a pod (run and enter), and left out with
// --insecure-options=paths (checked from mountinfo only: nothing is written then);
// os/linux/oom-score-adj and --oom-score-adj seen through run and enter; bad
// values refused at prepare. Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeDataDir, type DataDir } from './harness/index.js';
import { BUSYBOX, failsWith, SKIP, podsTree, removeScratchDirs, withProbedPod, type Probe } from './pods-util.js';

let dd: DataDir;

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'isolation-paths');
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

// What a pod sees of the kernel paths. The sysctl write is tried only when the pod's
// own mountinfo says /proc/sys is read-only, and writes back the value just read:
// it can never change the host. `: >` on /proc/sysrq-trigger opens it and writes
// nothing. Every busybox applet is called by name (the image has few links).
const bb = (cmd: string) => `busybox ${cmd}`;
const PATHS_PROBE = `
mopts() { ${bb('awk')} -v m="$1" '$5 == m { o = $6 } END { print o }' /proc/self/mountinfo; }
p sysrq "$( (: > /proc/sysrq-trigger) 2>&1 && echo written)"
p kcore-bytes "$(${bb('dd')} if=/proc/kcore bs=64 count=1 2>/dev/null | ${bb('wc')} -c)"
p firmware-entries "$(${bb('ls')} -A /sys/firmware 2>/dev/null | ${bb('wc')} -l)"
p proc-sys-opts "$(mopts /proc/sys)"
case ",$(mopts /proc/sys)," in
*,ro,*) v=$(cat /proc/sys/kernel/panic); p sysctl "$( (printf '%s\n' "$v" > /proc/sys/kernel/panic) 2>&1 && echo written)" ;;
*) p sysctl not-tried ;;
esac
`;

const hostHas = (p: string) => fs.existsSync(p);

function checkMasked(probe: Probe, how: string): void {
  const m = probe.mounts();
  const sys = m.get('/proc/sys');
  assert.ok(sys, `${how}: /proc/sys is a mount of its own`);
  assert.ok(sys.options.includes('ro'), `${how}: /proc/sys is read-only: ${JSON.stringify(sys)}`);
  for (const o of ['nosuid', 'nodev', 'noexec']) assert.ok(sys.options.includes(o), `${how}: /proc/sys keeps ${o}`);
  assert.equal(probe.get('proc-sys-opts'), sys.options.join(','));
  assert.match(probe.get('sysctl'), /Read-only file system/, `${how}: a non-namespaced sysctl cannot be written`);
  assert.doesNotMatch(probe.get('sysrq'), /written/, `${how}: /proc/sysrq-trigger cannot be written`);
  assert.equal(probe.get('kcore-bytes'), '0', `${how}: /proc/kcore yields nothing`);
  assert.equal(probe.get('firmware-entries'), '0', `${how}: /sys/firmware is empty`);
  for (const f of ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sysrq-trigger', '/proc/sched_debug', '/proc/latency_stats', '/proc/timer_stats']) {
    if (hostHas(f)) assert.ok(m.has(f), `${how}: ${f} is masked`);
    else assert.ok(!m.has(f), `${how}: ${f} (missing here) is skipped`);
  }
  for (const d of ['/proc/acpi', '/proc/scsi', '/sys/firmware']) {
    if (!hostHas(d)) continue;
    assert.equal(m.get(d)?.fsType, 'tmpfs', `${how}: ${d} is an empty tmpfs`);
    assert.ok(m.get(d)!.options.includes('ro'), `${how}: ${d} is read-only`);
  }
  for (const d of ['/proc/irq', '/proc/bus', '/proc/fs']) {
    if (hostHas(d)) assert.ok(m.get(d)?.options.includes('ro'), `${how}: ${d} is read-only`);
  }
}

describe('kernel paths', { skip: SKIP }, () => {
  test('masked and read-only by default: run and enter', async () => {
    await withProbedPod(dd, { extra: PATHS_PROBE }, async (pod) => {
      checkMasked(pod.run, 'run');
      checkMasked(await pod.enter(undefined, PATHS_PROBE), 'enter');
    });
  });

  test('--insecure-options=paths leaves them out (nothing written)', async () => {
    // mountinfo only (the plain probe): nothing is written to /proc
    await withProbedPod(dd, { podFlags: ['--insecure-options=paths'] }, async (pod) => {
      for (const probe of [pod.run, await pod.enter()]) {
        const m = probe.mounts();
        assert.equal(m.get('/proc/sys'), undefined, '/proc/sys is part of /proc, not a read-only bind');
        assert.ok(!m.get('/proc')!.options.includes('ro'), '/proc is not read-only');
        assert.equal(m.get('/proc/kcore'), undefined, '/proc/kcore is not masked');
        assert.equal(m.get('/sys/firmware'), undefined, '/sys/firmware is not masked');
      }
    });
  });

  test('--user=1000 still runs, with the masks', async () => {
    await withProbedPod(dd, { appFlags: ['--user=1000'] }, async (pod) => {
      assert.equal(pod.run.get('uid'), '1000');
      assert.ok(pod.run.mounts().get('/proc/sys')?.options.includes('ro'));
    });
  });
});

describe('oom-score-adj', { skip: SKIP }, () => {
  const extra = 'p oom "$(cat /proc/self/oom_score_adj)"';
  // Lowering it needs CAP_SYS_RESOURCE, which some test hosts (containers) lack.
  const canLower = (BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]}`) & (1n << 24n)) !== 0n;
  for (const v of ['500', '-200']) {
    test(`--oom-score-adj=${v}: run and enter`, { skip: v.startsWith('-') && !canLower ? 'no CAP_SYS_RESOURCE here' : false }, async () => {
      await withProbedPod(dd, { appFlags: [`--oom-score-adj=${v}`], extra }, async (pod) => {
        assert.equal(pod.run.get('oom'), v);
        assert.equal((await pod.enter(undefined, extra)).get('oom'), v);
      });
    });
  }

  test('bad values are refused at prepare: one line, exit 254, no pod', async () => {
    const before = podsTree(dd.path).filter((p) => !p.startsWith('prepare/'));
    for (const v of ['abc', '5000', '-1001', '1.5', '']) {
      failsWith(await dd.tspod(['prepare', BUSYBOX, `--oom-score-adj=${v}`]), /--oom-score-adj: .* is not an integer from -1000 to 1000/);
    }
    assert.deepEqual(podsTree(dd.path).filter((p) => !p.startsWith('prepare/')), before, 'no pod left behind');
  });
});
