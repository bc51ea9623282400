// enter parity (issue 10 item 8: "a test proves that enter cannot do what the app
// cannot"): for one pod, the app's own probe and the probe `tspod enter` runs in it
// must report the same restrictions, value for value: the capability sets,
// NoNewPrivs, the seccomp mode and filter count, the uid/gid and the user
// namespace's maps, every namespace, the cgroup of each hierarchy (devices
// included) as its cgroup namespace shows it, oom_score_adj, the mounts with their
// options (masked and read-only kernel paths), and the outcome of each attack:
// writing /proc/sysrq-trigger and a sysctl, reading /proc/kcore, mounting a proc,
// unshare, swapoff, setting the hostname, making a disk's device node, opening a
// node of its own for /dev/null. The attacks must fail in both (those the options
// allow, such as mount with CAP_SYS_ADMIN and no filter for it, must do the same in
// both). Run for a default pod, a non-root app, --private-users, and
// --caps-retain with --seccomp. Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeDataDir, type DataDir } from './harness/index.js';
import { removeScratchDirs, SKIP, withProbedPod, type Probe } from './pods-util.js';

let dd: DataDir;

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'isolation-enter-parity');
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

const V1_DEVICES = fs.existsSync('/sys/fs/cgroup/devices/devices.list');

/** `p KEY "<output on one line> rc=<exit status>"` of a command. */
const t = (key: string, cmd: string) => `o=$( (${cmd}) 2>&1); r=$?; p try.${key} "$(echo $o) rc=$r"`;

const PARITY_PROBE = [
  'st() { busybox sed -n "s/^$1:[[:space:]]*//p" /proc/self/status; }',
  'p par.caps "$(for k in CapInh CapPrm CapEff CapBnd CapAmb; do printf "%s=%s " $k $(st $k); done)"',
  'p par.nnp "$(st NoNewPrivs)"',
  'p par.seccomp "$(st Seccomp) filters=$(st Seccomp_filters)"',
  'p par.ids "$(busybox id)"',
  'p par.uid-map "$(echo $(cat /proc/self/uid_map))"',
  'p par.gid-map "$(echo $(cat /proc/self/gid_map))"',
  'p par.ns "$(for n in mnt pid uts ipc net cgroup user; do busybox readlink /proc/self/ns/$n; done | busybox tr "\\n" " ")"',
  'p par.cgroup "$(busybox tr "\\n" " " < /proc/self/cgroup)"',
  'p par.oom "$(cat /proc/self/oom_score_adj)"',
  'p par.mounts "$(busybox awk \'{ print $5, $6 }\' /proc/self/mountinfo | busybox sort | busybox tr "\\n" ";")"',
  'busybox mkdir -p /tmp /mnt',
  t('sysrq', ': > /proc/sysrq-trigger'),
  t('sysctl', 'v=$(cat /proc/sys/kernel/panic); printf "%s\\n" "$v" > /proc/sys/kernel/panic'),
  t('kcore', 'busybox head -c 16 /proc/kcore | busybox wc -c'),
  t('mount-proc', 'busybox mkdir -p /mnt/pp-$$ && busybox mount -t proc proc /mnt/pp-$$ && busybox umount /mnt/pp-$$'),
  t('unshare', 'busybox unshare -U true'),
  t('swapoff', 'busybox swapoff /no-such-swap'),
  t('hostname', 'busybox hostname "$(busybox hostname)"'),
  t('mknod-disk', 'busybox mknod /tmp/disk-$$ b 7 0'),
  t('mknod-null-open', 'busybox mknod /tmp/null-$$ c 1 3 && echo x > /tmp/null-$$'),
  'busybox rm -f /tmp/disk-$$ /tmp/null-$$; busybox rmdir /mnt/pp-$$ 2>/dev/null',
].join('\n');

const TRIES = ['sysrq', 'sysctl', 'kcore', 'mount-proc', 'unshare', 'swapoff', 'hostname', 'mknod-disk', 'mknod-null-open'];

/** Every parity key and its value (the try.* ones with the probe's pid-specific paths made generic). */
function fingerprint(p: Probe): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of p.one) if (k.startsWith('par.') || k.startsWith('try.')) out[k] = v.replace(/-\d+\b/g, '-PID');
  return out;
}

const variants: Array<{ name: string; podFlags?: string[]; appFlags?: string[]; allowed?: string[] }> = [
  { name: 'a default pod (root)' },
  { name: 'a non-root app (--user=1000)', appFlags: ['--user=1000', '--group=1000'] },
  { name: '--private-users', podFlags: ['--private-users'] },
  {
    name: '--caps-retain=CAP_SYS_ADMIN,CAP_MKNOD and --seccomp mode=remove,errno=ENOSYS,unshare,swapoff',
    appFlags: ['--caps-retain=CAP_SYS_ADMIN,CAP_MKNOD', '--seccomp=mode=remove,errno=ENOSYS,unshare,swapoff'],
    // CAP_SYS_ADMIN and no filter for mount or sethostname: the app may, so may enter
    allowed: ['mount-proc', 'hostname'],
  },
];

describe('enter gets exactly the app’s restrictions', { skip: SKIP }, () => {
  for (const v of variants) {
    test(`${v.name}: the app and enter report the same, and the same attacks fail`, async () => {
      await withProbedPod(dd, { podFlags: v.podFlags, appFlags: v.appFlags, extra: PARITY_PROBE }, async (pod) => {
        const run = fingerprint(pod.run);
        const entered = fingerprint(await pod.enter(undefined, PARITY_PROBE));
        assert.equal(Object.keys(run).length, 10 + TRIES.length, JSON.stringify(run));
        assert.deepEqual(entered, run, 'enter reports exactly what the app does');
        for (const k of TRIES) {
          const allowed = v.allowed?.includes(k) ?? false;
          if (k === 'kcore') assert.match(run[`try.${k}`], /(^|\s)0 rc=0$/, `${k}: nothing read (masked or missing)`);
          else if (allowed) assert.match(run[`try.${k}`], / rc=0$/, `${k} is allowed here`);
          else assert.match(run[`try.${k}`], / rc=[1-9]\d*$/, `${k} must fail (in the app and so in enter)`);
        }
        // the cgroup namespace shows each hierarchy's cgroup, the devices one too, as its own root
        assert.match(run['par.cgroup'], /^(\d+:[^:]*:\/ )+$/, run['par.cgroup']);
        if (V1_DEVICES) assert.match(run['par.cgroup'], /\d+:devices:\/ /);
        assert.match(run['par.seccomp'], /^2 filters=1$/, 'a seccomp filter, once');
      });
    });
  }
});
