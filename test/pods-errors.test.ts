// Bad input (issue 3, "Bad input"): one clear line on stderr, exit 254, and no
// half-made pod anywhere (pods/prepare, which gc cleans as an aborted prepare,
// is the only place one may be left). Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, type DataDir } from './harness/index.js';
import { BUSYBOX, SKIP, ok, podsTree, removeScratchDirs, scratchDir, startTspod, stopAndWait, type BackgroundPod } from './pods-util.js';

let dd: DataDir;
let exitedUuid = '';
let runningUuid = '';
let running: BackgroundPod | undefined;
let busyboxId = '';
/** Two fake prepared pods that share the prefix `abcdef0`. */
const AMBIGUOUS = ['abcdef01-0000-4000-8000-000000000001', 'abcdef02-0000-4000-8000-000000000002'];

before(async () => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'pods-errors');
  await ok(dd, ['fetch', BUSYBOX]);
  const uuidFile = path.join(dd.path, 'uuid-exited');
  await ok(dd, ['run', `--uuid-file-save=${uuidFile}`, BUSYBOX, '--exec=/bin/true']);
  exitedUuid = fs.readFileSync(uuidFile, 'utf8').trim();
  const runFile = path.join(dd.path, 'uuid-running');
  running = startTspod(dd, ['run', `--uuid-file-save=${runFile}`, BUSYBOX, '--exec=/bin/sh', '--', '-c', 'echo ready; exec sleep 3600']);
  await running.waitOutput(/^ready$/m);
  runningUuid = fs.readFileSync(runFile, 'utf8').trim();
  // Pods on disk the way prepare leaves them: pods/prepared/U and the marker pods/uuids/xx/U.
  for (const u of AMBIGUOUS) {
    fs.mkdirSync(path.join(dd.path, 'pods/prepared', u), { recursive: true });
    fs.mkdirSync(path.join(dd.path, 'pods/uuids', u.slice(0, 2)), { recursive: true });
    fs.writeFileSync(path.join(dd.path, 'pods/uuids', u.slice(0, 2), u), '');
  }
  const images = JSON.parse((await ok(dd, ['image', 'list', '--format=json'])).stdout) as Array<{ id: string; name: string }>;
  busyboxId = images.find((i) => i.name.endsWith(':busybox'))!.id;
});
after(async () => {
  if (running) await stopAndWait(dd, running, runningUuid);
  removeScratchDirs();
  if (dd) await dd.remove();
});

interface Case {
  args: string[] | (() => string[]);
  /** The one line, without the `tspod: ` prefix. */
  line: RegExp;
}

describe('bad input', { skip: SKIP }, () => {
  test('each gets one line on stderr, exit 254, and leaves no pod behind', async () => {
    const missing = path.join(dd.path, 'no-such-dir');
    const manifests = scratchDir('bad-manifests');
    const noApps = path.join(manifests, 'no-apps.json');
    fs.writeFileSync(noApps, JSON.stringify({ acKind: 'PodManifest', acVersion: '0.8.11', apps: [] }));
    const notJson = path.join(manifests, 'not-json.json');
    fs.writeFileSync(notJson, '{"acKind": ');
    const dupApps = path.join(manifests, 'dup-apps.json');
    const good = path.join(manifests, 'good.json');
    const app = (name: string) => ({ name, image: { id: busyboxId }, app: { exec: ['/bin/true'], user: '0', group: '0' } });
    fs.writeFileSync(dupApps, JSON.stringify({ acKind: 'PodManifest', acVersion: '0.8.11', apps: [app('x'), app('x')] }));
    fs.writeFileSync(good, JSON.stringify({ acKind: 'PodManifest', acVersion: '0.8.11', apps: [app('x')] }));
    const uuidFile = path.join(manifests, 'uuid');
    fs.writeFileSync(uuidFile, '0000\n');
    const envFile = path.join(manifests, 'env');
    fs.writeFileSync(envFile, 'A=1\n');
    const exec = ['--exec=/bin/true'];

    const cases: Case[] = [
      // volumes
      { args: ['run', `--volume=h,kind=host,source=${missing}`, BUSYBOX, '--mount=volume=h,target=/h', ...exec], line: /^volume h: host source ".*no-such-dir" does not exist/ },
      { args: ['prepare', `--volume=h,kind=host,source=${missing}`, BUSYBOX, ...exec], line: /^volume h: host source ".*no-such-dir" does not exist/ },
      { args: ['run', '--volume=v,kind=empty', '--volume=v,kind=empty', BUSYBOX, ...exec], line: /^duplicate volume name "v"/ },
      // apps
      { args: ['run', BUSYBOX, ...exec, BUSYBOX, ...exec], line: /^multiple apps with name \S+: give each app its own --name/ },
      { args: ['prepare', BUSYBOX, '--name=same', ...exec, BUSYBOX, '--name=same', ...exec], line: /^multiple apps with name same/ },
      { args: ['run', '--interactive', BUSYBOX, '--name=a', ...exec, BUSYBOX, '--name=b', ...exec], line: /^interactive option only supports one image/ },
      { args: ['run', BUSYBOX, '--exec=/no/such/program'], line: /^app \S+: executable "\/no\/such\/program" not found in image/ },
      { args: ['run', BUSYBOX, '--exec=no-such-program'], line: /^app \S+: executable "no-such-program" not found in image/ },
      { args: ['run', BUSYBOX, '--user=nosuchuser', ...exec], line: /^app \S+: user "nosuchuser" is not in the image's \/etc\/passwd/ },
      { args: ['run', BUSYBOX, '--group=nosuchgroup', ...exec], line: /^app \S+: group "nosuchgroup" is not in the image's \/etc\/group/ },
      { args: ['run', BUSYBOX, '--user=/no/such/file', ...exec], line: /^app \S+: user path "\/no\/such\/file" does not exist in the image/ },
      { args: ['prepare', BUSYBOX, '--name=Bad_Name', ...exec], line: /^invalid app name "Bad_Name"/ },
      // run-prepared of a pod that is not prepared
      { args: () => ['run-prepared', exitedUuid], line: new RegExp(`^pod "${exitedUuid}" is not prepared: it is exited$`) },
      { args: () => ['run-prepared', runningUuid.slice(0, 8)], line: new RegExp(`^pod "${runningUuid}" is not prepared: it is running$`) },
      // --pod-manifest
      ...[[BUSYBOX], ['--volume=v,kind=empty'], ['--mount=volume=v,target=/v'], ['--set-env=A=1'], [`--set-env-file=${envFile}`], ['--inherit-env']].map(
        (extra): Case => ({ args: ['run', `--pod-manifest=${good}`, ...extra], line: /^conflicting flags set with --pod-manifest \(see --help\)/ }),
      ),
      { args: ['run', `--pod-manifest=${noApps}`], line: /the pod manifest has no apps$/ },
      { args: ['prepare', `--pod-manifest=${notJson}`], line: /^--pod-manifest ".*not-json\.json": not valid JSON$/ },
      { args: ['run', `--pod-manifest=${dupApps}`], line: /^multiple apps with name x$/ },
      { args: ['run', `--pod-manifest=${path.join(manifests, 'missing.json')}`], line: /^--pod-manifest ".*missing\.json": ENOENT$/ },
      // malformed --volume, --mount, --set-env
      { args: ['run', '--volume=v', BUSYBOX], line: /^--volume "v": kind=host or kind=empty is missing/ },
      { args: ['run', '--volume=v,kind=bogus', BUSYBOX], line: /^--volume "v,kind=bogus": unknown kind "bogus"/ },
      { args: ['run', '--volume=v,kind=host', BUSYBOX], line: /^--volume "v,kind=host": kind=host needs source=/ },
      { args: ['run', '--volume=v,kind=host,source=relative/dir', BUSYBOX], line: /is not an absolute path/ },
      { args: ['run', '--volume=v,kind=empty,mode=999', BUSYBOX], line: /mode "999" is not octal/ },
      { args: ['run', '--volume=v,kind=empty,uid=x', BUSYBOX], line: /uid "x" is not a number/ },
      { args: ['run', '--volume=kind=empty', BUSYBOX], line: /it must start with the volume name/ },
      { args: ['run', '--volume=v,kind=host,source=/tmp,readOnly=maybe', BUSYBOX], line: /"maybe" is not true or false/ },
      { args: ['run', BUSYBOX, '--mount=volume=v'], line: /^--mount "volume=v": target=PATH is missing/ },
      { args: ['run', BUSYBOX, '--mount=target=/x'], line: /^--mount "target=\/x": volume=NAME is missing/ },
      { args: ['run', BUSYBOX, '--mount=garbage'], line: /^--mount "garbage": "garbage" is not key=value/ },
      // A relative target is taken from the root (security-paths.test.ts); one that climbs is refused.
      { args: ['run', BUSYBOX, '--mount=volume=v,target=a/../../x'], line: /target "a\/\.\.\/\.\.\/x" has a "\.\." component/ },
      { args: ['run', BUSYBOX, '--mount=volume=nosuch,target=/x', ...exec], line: /names volume "nosuch", which the pod does not have/ },
      { args: ['run', '--set-env=NOEQUALS', BUSYBOX], line: /^--set-env: "NOEQUALS" is not NAME=VALUE$/ },
      { args: ['run', '--set-env==value', BUSYBOX], line: /^--set-env: "=value" is not NAME=VALUE$/ },
      { args: ['run', '--set-env=1BAD=x', BUSYBOX], line: /^--set-env: "1BAD" is not a valid variable name$/ },
      { args: ['run', '--set-env=A=1', '--set-env=A=2', BUSYBOX], line: /^--set-env: A is set twice$/ },
      { args: ['run', BUSYBOX, '--environment=NOEQUALS'], line: /^--environment: "NOEQUALS" is not NAME=VALUE$/ },
    ];

    // UUIDs: unknown, ambiguous, empty, for every command that takes one.
    const uuidCommands: Array<(u: string) => string[]> = [
      (u) => ['status', u],
      (u) => ['stop', u],
      (u) => ['rm', u],
      (u) => ['cat-manifest', u],
      (u) => ['enter', u, '/bin/true'],
      (u) => ['export', u, path.join(manifests, 'out.aci')],
      (u) => ['run-prepared', u],
    ];
    for (const cmd of uuidCommands) {
      cases.push({ args: cmd('0000'), line: /^no matches found for "0000"/ });
      cases.push({ args: cmd('abcdef0'), line: /^ambiguous uuid, 2 matches/ });
      cases.push({ args: cmd('not-a-uuid'), line: /^no matches found for "not-a-uuid"/ });
      cases.push({ args: cmd(''), line: /^UUID cannot be empty/ });
    }
    for (const c of ['status', 'stop', 'rm', 'cat-manifest', 'run-prepared']) {
      cases.push({ args: [c], line: /^UUID cannot be empty/ });
      cases.push({ args: [c, `--uuid-file=${uuidFile}`], line: /^no matches found for "0000"/ });
    }
    cases.push({ args: ['enter'], line: /^UUID cannot be empty/ });
    cases.push({ args: ['enter', `--uuid-file=${uuidFile}`, '/bin/true'], line: /^no matches found for "0000"/ });
    cases.push({ args: ['export', `--uuid-file=${uuidFile}`, path.join(manifests, 'out.aci')], line: /^no matches found for "0000"/ });

    const before = podsTree(dd.path);
    const failures: string[] = [];
    for (const c of cases) {
      const args = typeof c.args === 'function' ? c.args() : c.args;
      const r = await dd.tspod(args);
      const lines = r.stderr.split('\n').filter(Boolean);
      const problems: string[] = [];
      if (r.code !== 254) problems.push(`exit ${r.code}, not 254`);
      if (lines.length !== 1) problems.push(`${lines.length} lines on stderr, not 1`);
      else if (!lines[0].startsWith('tspod: ') || !c.line.test(lines[0].slice('tspod: '.length))) problems.push(`the line does not match ${c.line}`);
      if (r.stdout !== '') problems.push('something on stdout');
      const after = podsTree(dd.path).filter((p) => !p.startsWith('prepare/'));
      const added = after.filter((p) => !before.includes(p));
      const removed = before.filter((p) => !after.includes(p) && !p.startsWith('prepare/'));
      if (added.length || removed.length) problems.push(`the pods tree changed: +${added.join(',')} -${removed.join(',')}`);
      if (problems.length) failures.push(`${problems.join('; ')}\n${describeResult(r)}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${cases.length} bad inputs were not handled:\n\n${failures.join('\n\n')}`);
    // The running pod was not disturbed.
    assert.match((await ok(dd, ['status', runningUuid])).stdout, /^state=running$/m);
  });
});
