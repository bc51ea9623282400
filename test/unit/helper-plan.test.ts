// The helper's plan parser (native/helper/plan.c; native/helper/PLAN.md), through
// `tspod-helper plan-check`, which parses as `run` does and runs nothing: no root.
// A good plan passes; each malformed one is refused with run's error, one line
// naming the plan line, exit 254. (What the directives do is test/helper.test.ts,
// as root.)
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { HELPER, planCheck, scratch } from './util.js';

const P = '/pods/run/u1';
const ROOT = `${P}/stage1/rootfs`;
const APP = `${ROOT}/opt/stage2/main/rootfs`;
const BASE = [
  'version 1',
  'uuid 00000000-0000-4000-8000-000000000001',
  'hostname pod1',
  'namespaces mnt,pid,uts,ipc,net',
  `status-dir ${P}/status`,
  `pid-file ${P}/pid`,
  `apps-pid-dir ${P}/apps-pid`,
  `root ${ROOT}`,
  'stdin null',
  `mkdir ${ROOT} 0755`,
  `mount tmpfs ${ROOT} tmpfs nosuid,nodev mode=0755`,
  `mkdir ${APP} 0755`,
  `mount overlay ${APP} overlay nodev lowerdir=/layers/a,upperdir=${P}/overlay/main/upper,workdir=${P}/overlay/main/work`,
  `write ${APP}/etc/hosts 0644 127.0.0.1%20localhost%0A`,
  `symlink /proc/self/fd ${APP}/dev/fd`,
  'app main',
  'app-root /opt/stage2/main/rootfs',
  'app-exec /bin/sh -c echo%20hi',
  'app-env PATH=/bin',
  'app-cwd /',
  'app-user 0',
  'app-group name:wheel',
  'app-supplementary-gids 5,6',
  'app-readonly-root 0',
  'app-no-new-privileges 1',
  'app-capabilities 3fff',
  'app-oom-score-adj -100',
  'end-app',
];
const plan = (lines: string[]) => `${lines.join('\n')}\n`;

/** BASE with the first line matching `at` replaced by `by` (a list: several lines; none: deleted). */
function edit(at: RegExp, by: string | string[] | null): string {
  const i = BASE.findIndex((l) => at.test(l));
  assert.ok(i >= 0, `no line matches ${at}`);
  const lines = [...BASE];
  lines.splice(i, 1, ...(by === null ? [] : Array.isArray(by) ? by : [by]));
  return plan(lines);
}

describe('helper plan parser (plan-check, no root)', () => {
  test('a good plan passes and is summed up; nothing is made', () => {
    const r = planCheck(plan(BASE));
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `plan ${r.file}: 6 set-up steps, 1 apps, 0 sysctls\n`);
    assert.equal(r.err, '');
    assert.equal(fs.existsSync(P), false);
  });

  const refused: Array<[string, string | Buffer, RegExp]> = [
    ['empty plan', '', /: empty plan \(no "version 1"\)$/],
    ['version not first', plan(['uuid x', ...BASE]), /line 1: the first directive must be "version 1"$/],
    ['another version', edit(/^version/, 'version 2'), /line 1: unsupported plan version "2" \(this helper reads version 1\)$/],
    ['an unknown directive', edit(/^stdin/, ['stdin null', 'frobnicate 1']), /line 10: unknown directive "frobnicate"$/],
    ['a directive given twice', edit(/^hostname/, ['hostname a', 'hostname b']), /line 4: hostname given twice$/],
    ['wrong field count', edit(/^uuid/, 'uuid a b'), /line 2: uuid takes 1 field, got 2$/],
    ['two spaces', edit(/^hostname/, 'hostname  pod1'), /line 3: empty field \(fields are separated by single spaces; write -E- for empty\)$/],
    ['an unencoded tab', edit(/^hostname/, 'hostname\tpod1'), /line 3: unencoded control byte 0x09$/],
    ['an unencoded high byte', edit(/^hostname/, 'hostname p\u00e9'), /line 3: unencoded byte 0xc3$/],
    ['bad percent-encoding', edit(/^hostname/, 'hostname pod%2'), /line 3: bad percent-encoding in field 1$/],
    ['%00', edit(/^hostname/, 'hostname pod%00'), /line 3: NUL byte \(%00\) in field 1$/],
    ['a raw NUL byte', Buffer.concat([Buffer.from(plan(BASE)), Buffer.from([0])]), /: contains a NUL byte$/],
    ['a long hostname', edit(/^hostname/, `hostname ${'h'.repeat(65)}`), /line 3: hostname must be 1 to 64 bytes$/],
    ['an unknown namespace', edit(/^namespaces/, 'namespaces mnt,pid,time'), /line 4: unknown namespace "time"$/],
    ['no mnt namespace', edit(/^namespaces/, 'namespaces pid,uts'), /line 4: namespaces must include mnt/],
    ['no namespaces', edit(/^namespaces/, null), /: no namespaces directive$/],
    ['no root', edit(/^root/, null), /: no root directive$/],
    ['root /', edit(/^root/, 'root /'), /line 8: the pod root cannot be \/$/],
    ['a relative path', edit(/^root/, 'root relative/../x'), /line 8: path "relative\/..\/x" must be without ".."$/],
    ['stdin', edit(/^stdin/, 'stdin tty'), /line 9: stdin wants null or inherit$/],
    ['stdin inherit with two apps', plan([...edit(/^stdin/, 'stdin inherit').trimEnd().split('\n'), 'app two', 'app-root /opt/stage2/two/rootfs', 'app-exec /bin/true', 'end-app']), /stdin inherit is for one app only \(2 apps\)$/],
    ['a target outside the root', edit(/^symlink/, `symlink /proc/self/fd ${P}/escape`), /line 15: symlink target \/pods\/run\/u1\/escape is not below the pod root \/pods\/run\/u1\/stage1\/rootfs$/],
    ['a sibling of the root', edit(/^symlink/, `symlink x ${ROOT}2/x`), /symlink target .* is not below the pod root/],
    ['a bad mode', edit(/^mkdir \S+main/, `mkdir ${APP} 0999`), /line 12: bad octal mode "0999"$/],
    ['an unknown mount flag', edit(/^mount tmpfs/, `mount tmpfs ${ROOT} tmpfs nosuid,suid mode=0755`), /line 11: unknown mount flag "suid"$/],
    ['a bind without a source', edit(/^mount tmpfs/, `mount - ${ROOT} - bind -`), /line 11: a bind mount needs a source$/],
    ['idmap without userns', edit(/^mount tmpfs/, `mount /x ${ROOT} - bind,idmap -`), /idmap needs a userns directive$/],
    ['userns mapping the host root', edit(/^stdin/, ['stdin null', 'userns 0 0 65536']), /line 10: userns: the host's root \(id 0\) is never mapped into a pod$/],
    ['userns with count 0', edit(/^stdin/, ['stdin null', 'userns 100000 100000 0']), /line 10: userns wants <uid base> <gid base> <count>/],
    ['create-owner without a gid', edit(/^stdin/, ['stdin null', 'create-owner 100000 -']), /line 10: create-owner wants a uid and a gid$/],
    ['a host sysctl', edit(/^stdin/, ['stdin null', 'sysctl vm.swappiness 10']), /line 10: sysctl vm.swappiness is not a namespaced one/],
    ['a net sysctl without the net namespace', plan([...edit(/^namespaces/, 'namespaces mnt,pid,uts,ipc').trimEnd().split('\n').slice(0, 9), 'sysctl net.ipv4.ip_forward 1', ...BASE.slice(9)]), /line 10: sysctl net.ipv4.ip_forward needs the pod's own net namespace$/],
    ['netns without net', edit(/^namespaces/, ['namespaces mnt,pid', 'netns /run/netns/x']), /netns needs net in namespaces$/],
    ['a relative exit-exec', edit(/^stdin/, ['stdin null', 'exit-exec bash x']), /line 10: exit-exec wants an absolute path$/],
    ['a step inside an app block', edit(/^app-cwd/, `mkdir ${APP}/x 0755`), /line 20: mkdir inside app block main$/],
    ['a pod directive inside an app block', edit(/^app-cwd/, 'hostname x'), /line 20: hostname inside app block main$/],
    ['an app directive outside', edit(/^stdin/, ['stdin null', 'app-cwd /']), /line 10: app-cwd outside an app block$/],
    ['no end-app', edit(/^end-app/, null), /app main: missing end-app at end of plan$/],
    ['no app', plan(BASE.slice(0, 15)), /: no app$/],
    ['no app-exec', edit(/^app-exec/, null), /line 27: app main has no app-exec$/],
    ['a bad app name', edit(/^app main/, 'app ../x'), /line 16: bad app name "..\/x"$/],
    ['two apps of one name', plan([...BASE, 'app main', 'app-root /opt/stage2/main/rootfs', 'app-exec /bin/true', 'end-app']), /line 29: two apps named main$/],
    ['app-env without =', edit(/^app-env/, 'app-env PATH'), /line 19: app-env wants NAME=VALUE$/],
    ['a relative app-cwd', edit(/^app-cwd/, 'app-cwd tmp'), /line 20: app-cwd must be absolute$/],
    ['a bad user', edit(/^app-user/, 'app-user root'), /line 21: bad user\/group "root" \(want a number, name:NAME or path:\/PATH\)$/],
    ['a bad gid', edit(/^app-supplementary-gids/, 'app-supplementary-gids 5,x'), /line 23: bad gid "x"$/],
    ['not 0 or 1', edit(/^app-readonly-root/, 'app-readonly-root yes'), /line 24: expected 0 or 1, got "yes"$/],
    ['a bad capability mask', edit(/^app-capabilities/, 'app-capabilities xyz'), /line 26: bad capability mask "xyz" \(want hex\)$/],
    ['a bad oom score', edit(/^app-oom-score-adj/, 'app-oom-score-adj 1001'), /line 27: bad oom score adjustment "1001" \(want -1000..1000\)$/],
    ['a huge oom score', edit(/^app-oom-score-adj/, 'app-oom-score-adj 18446744073709551617'), /line 27: bad oom score adjustment/],
    ['app-seccomp: an unknown syscall', edit(/^app-oom-score-adj/, 'app-seccomp retain 1 read,no_such_syscall'), /line 27: app-seccomp: unknown syscall "no_such_syscall"$/],
    ['app-seccomp: a bad mode', edit(/^app-oom-score-adj/, 'app-seccomp sideways 1 read'), /line 27: app-seccomp: bad /],
    ['app-cgroup: relative', edit(/^app-oom-score-adj/, 'app-cgroup relative/dir'), /line 27: path "relative\/dir" must be absolute/],
    ['app-device-filter: a bad rule', edit(/^app-oom-score-adj/, 'app-device-filter /sys/fs/cgroup/x c:1:3:rz'), /line 27: app-device-filter: bad /],
  ];
  for (const [what, text, why] of refused) {
    test(`refused: ${what}`, () => {
      const r = planCheck(text);
      assert.equal(r.code, 254, `${what}: ${r.out}${r.err}`);
      assert.equal(r.out, '');
      assert.match(r.err, /^tspod-helper: plan [^\n]+\n$/, 'one line');
      assert.ok(r.err.startsWith(`tspod-helper: plan ${r.file}`), r.err);
      assert.match(r.err.trimEnd(), why);
    });
  }

  test('a plan that cannot be read; usage', () => {
    const r = spawnSync(HELPER, ['plan-check', path.join(scratch(), 'none')], { encoding: 'utf8' });
    assert.equal(r.status, 254);
    assert.match(r.stderr, /^tspod-helper: cannot read plan .*: No such file or directory\n$/);
    const u = spawnSync(HELPER, ['plan-check'], { encoding: 'utf8' });
    assert.equal(u.status, 254);
    assert.equal(u.stderr, 'tspod-helper: usage: tspod-helper plan-check <plan>\n');
  });
});
