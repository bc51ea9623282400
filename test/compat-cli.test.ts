// rkt's command line where scripts rely on it (issue 7, "Flags anywhere" and
// "Messages"): a command's flags before the command name, --insecure-options
// given twice, --mds-register=false, --no-store and --store-only (for prepare,
// run and fetch), and rkt's wording for the mistakes scripts grep for; one CLI
// layer (issue 9): the global flags read by one function wherever they stand, a
// bad flag value refused with the same line and 254 in every command. Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, runTspod, type DataDir } from './harness/index.js';
import { BUSYBOX, failsWith, SKIP, ok, podsTree, removeScratchDirs, scratchDir } from './pods-util.js';

let dd: DataDir;
let busyboxName = '';

before(async () => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'compat-cli');
  await ok(dd, ['fetch', BUSYBOX]);
  const images = JSON.parse((await ok(dd, ['image', 'list', '--format=json'])).stdout) as Array<{ id: string; name: string }>;
  busyboxName = images.find((i) => i.name.endsWith(':busybox'))!.name;
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

describe('flags before the command name', { skip: SKIP }, () => {
  test('pod flags before run: --net=none, --set-env, --hostname', async () => {
    const r = await ok(dd, ['--net=none', '--set-env=A=from-before', '--hostname', 'early', 'run', BUSYBOX, '--exec=/bin/sh', '--', '-c', 'ls /sys/class/net; echo "A=$A"; hostname']);
    assert.deepEqual(r.stdout.trim().split('\n'), ['lo', 'A=from-before', 'early']);
  });

  test('run-prepared and status flags before the command name', async () => {
    const uuid = (await ok(dd, ['prepare', '--quiet', BUSYBOX, '--exec=/bin/hostname'])).stdout.trim();
    const r = await ok(dd, ['--hostname=before-run-prepared', 'run-prepared', uuid]);
    assert.equal(r.stdout.trim(), 'before-run-prepared');
    const s = await ok(dd, ['--format=json', 'status', uuid]);
    assert.equal((JSON.parse(s.stdout) as { state: string }).state, 'exited');
  });

  test('prepare flags before the command name (--quiet prints only the UUID)', async () => {
    const r = await ok(dd, ['--quiet', 'prepare', BUSYBOX, '--exec=/bin/true']);
    assert.match(r.stdout, /^[0-9a-f-]{36}\n$/);
    await ok(dd, ['rm', r.stdout.trim()]);
  });
});

describe('--insecure-options', { skip: SKIP }, () => {
  test('given twice, the values add up (run, fetch, image list)', async () => {
    await ok(dd, ['--insecure-options=image', 'run', '--insecure-options=http', BUSYBOX, '--exec=/bin/true']);
    await ok(dd, ['run', '--insecure-options=image', '--insecure-options=tls', BUSYBOX, '--exec=/bin/true']);
    await ok(dd, ['fetch', '--insecure-options=image', '--insecure-options=http', BUSYBOX]);
    await ok(dd, ['--insecure-options=tls', 'image', 'list', '--insecure-options=image']);
  });

  test('an unknown value is still refused (bad input: 254, one line)', async () => {
    const r = await dd.tspod(['--insecure-options=image', 'run', '--insecure-options=bogus', BUSYBOX, '--exec=/bin/true']);
    failsWith(r, /^unknown --insecure-options value "bogus"/);
  });
});

describe("rkt's other pod flags", { skip: SKIP }, () => {
  test('--mds-register=false (the default) is accepted; --mds-register needs a running metadata service (test/network-mds)', async () => {
    await ok(dd, ['run', '--mds-register=false', BUSYBOX, '--exec=/bin/true']);
    await ok(dd, ['--mds-register=false', 'run', BUSYBOX, '--exec=/bin/true']);
    const env = { TSPOD_MDS_SOCKET: path.join(dd.path, 'no-mds.sock') };
    failsWith(await dd.tspod(['run', '--mds-register', BUSYBOX, '--exec=/bin/true'], { env }), /^--mds-register: no metadata service is running/);
  });

  test('--store-only is --pull-policy=never, --no-store is --pull-policy=update', async () => {
    // In the store: both work by name.
    await ok(dd, ['run', '--store-only', busyboxName, '--exec=/bin/true']);
    await ok(dd, ['run', '--no-store', BUSYBOX, '--exec=/bin/true']);
    // Not in the store: --store-only never goes out.
    const missing = 'docker://127.0.0.1:9/nothing/here:1';
    failsWith(await dd.tspod(['prepare', '--store-only', missing]), /is not in the store and the pull policy is never: fetch it first, or use --pull-policy=new$/);
    failsWith(await dd.tspod(['fetch', '--store-only', missing]), /is not in the store and the pull policy is never: fetch it first, or use --pull-policy=new$/);
    // fetch --no-store goes to the source (a layout here) as update does.
    await ok(dd, ['fetch', '--no-store', BUSYBOX]);
  });

  test('conflicting pull flags are refused', async () => {
    failsWith(await dd.tspod(['run', '--store-only', '--no-store', BUSYBOX]), /^both --store-only and --no-store specified$/);
    failsWith(await dd.tspod(['fetch', '--store-only', '--no-store', BUSYBOX]), /^both --store-only and --no-store specified$/);
    failsWith(await dd.tspod(['run', '--store-only', '--pull-policy=update', BUSYBOX]), /^--store-only conflicts with --pull-policy=update/);
  });
});

describe("rkt's messages", { skip: SKIP }, () => {
  test('the mistakes scripts grep for use rkt wording, exit 254, and leave no pod', async () => {
    const dir = scratchDir('compat-messages');
    const manifest = path.join(dir, 'pod.json');
    const images = JSON.parse((await ok(dd, ['image', 'list', '--format=json'])).stdout) as Array<{ id: string; name: string }>;
    const id = images.find((i) => i.name === busyboxName)!.id;
    fs.writeFileSync(manifest, JSON.stringify({ acKind: 'PodManifest', acVersion: '0.8.11', apps: [{ name: 'x', image: { id }, app: { exec: ['/bin/true'], user: '0', group: '0' } }] }));
    const conflicting = /^conflicting flags set with --pod-manifest \(see --help\)$/;
    const before = podsTree(dd.path);
    for (const extra of [['--no-store'], ['--store-only'], ['--pull-policy=update'], ['--pull-policy=never'], [BUSYBOX]]) {
      failsWith(await dd.tspod(['run', `--pod-manifest=${manifest}`, ...extra]), conflicting);
      failsWith(await dd.tspod(['prepare', `--pod-manifest=${manifest}`, ...extra]), conflicting);
    }
    failsWith(await dd.tspod(['run']), /^must provide at least one image or specify the pod manifest\b/);
    failsWith(await dd.tspod(['prepare', '--net=none']), /^must provide at least one image or specify the pod manifest\b/);
    failsWith(await dd.tspod(['run', '--interactive', BUSYBOX, '--name=a', '--exec=/bin/true', BUSYBOX, '--name=b', '--exec=/bin/true']), /^interactive option only supports one image/);
    assert.deepEqual(podsTree(dd.path).filter((p) => !p.startsWith('prepare/')), before.filter((p) => !p.startsWith('prepare/')));
  });
});

describe('one CLI layer: global flags and flag values read the same way in every command', { skip: SKIP }, () => {
  // Every way in: the fast paths (run-prepared, enter, run/prepare's own parser) and yargs.
  const commands = (uuid: string): string[][] => [
    ['run', BUSYBOX, '--exec=/bin/true'],
    ['prepare', BUSYBOX, '--exec=/bin/true'],
    ['run-prepared', uuid],
    ['enter', uuid, '/bin/true'],
    ['status', uuid],
    ['list'],
    ['image', 'list'],
    ['fetch', BUSYBOX],
    ['gc'],
  ];

  test('--debug=WORD: one line and 254 for a word that is not a bool, before or after the command', async () => {
    const uuid = (await ok(dd, ['prepare', BUSYBOX, '--exec=/bin/true'])).stdout.trim();
    const before = podsTree(dd.path);
    for (const c of commands(uuid)) {
      failsWith(await dd.tspod(['--debug=x', ...c]), /^--debug: "x" is not true or false$/);
      failsWith(await dd.tspod([...c.slice(0, c[0] === 'image' ? 2 : 1), '--debug=maybe', ...c.slice(c[0] === 'image' ? 2 : 1)]), /^--debug: "maybe" is not true or false$/);
    }
    assert.deepEqual(podsTree(dd.path), before, 'no pod made or moved');
    // Go's bool words (and yes/no) are read alike everywhere.
    await ok(dd, ['list', '--debug=false']);
    await ok(dd, ['--debug=0', 'image', 'list']);
    await ok(dd, ['run', '--debug=no', BUSYBOX, '--exec=/bin/true']);
    await ok(dd, ['rm', uuid, '--debug=f']);
  });

  test("a command's own bool flag: the same words and the same line through yargs", async () => {
    failsWith(await dd.tspod(['list', '--full=x']), /^--full: "x" is not true or false$/);
    failsWith(await dd.tspod(['image', 'list', '--no-legend', '--full=sometimes']), /^--full: "sometimes" is not true or false$/);
    assert.match((await ok(dd, ['list', '--full=yes'])).stdout, /^UUID\t+APP\t+IMAGE NAME\t+IMAGE ID\t/);
  });

  test('--pull-policy=bad: the same line and 254 in fetch, prepare and run; nothing made', async () => {
    const before = podsTree(dd.path);
    for (const c of [['fetch', '--pull-policy=bad', BUSYBOX], ['prepare', '--pull-policy=bad', BUSYBOX], ['run', '--pull-policy=bad', BUSYBOX]]) {
      failsWith(await dd.tspod(c), /^invalid --pull-policy "bad": use new, update or never$/);
    }
    assert.deepEqual(podsTree(dd.path), before, 'no pod left');
  });

  test('a global flag after the command name (--dir): list, image list, prepare, run-prepared, status, rm', async () => {
    const other = scratchDir('cli-other-dir');
    const at = (args: string[]) => runTspod(args, { dir: null });
    const prepared = await at(['prepare', BUSYBOX, '--exec=/bin/true', `--dir=${dd.path}`]);
    assert.equal(prepared.code, 0, describeResult(prepared));
    const uuid = prepared.stdout.trim();
    const listed = await at(['list', '--no-legend', '--full', `--dir=${dd.path}`]);
    assert.match(listed.stdout, new RegExp(`^${uuid}\t`, 'm'), describeResult(listed));
    assert.equal((await at(['list', '--no-legend', `--dir=${other}`])).stdout, '', 'the other directory has no pods');
    assert.match((await at(['image', 'list', '--no-legend', `--dir=${dd.path}`])).stdout, /busybox/);
    const ran = await at(['run-prepared', uuid, `--dir=${dd.path}`]);
    assert.equal(ran.code, 0, describeResult(ran));
    assert.match((await at(['status', uuid, `--dir=${dd.path}`])).stdout, /^state=exited$/m);
    const rm = await at(['rm', `--dir=${dd.path}`, uuid]);
    assert.equal(rm.code, 0, describeResult(rm));
  });

  test('rm and stop: one line per failed UUID, the others done, exit 254', async () => {
    const uuid = (await ok(dd, ['prepare', BUSYBOX, '--exec=/bin/true'])).stdout.trim();
    const r = await dd.tspod(['rm', 'nosuchpod1', uuid, 'nosuchpod2']);
    assert.equal(r.code, 254, describeResult(r));
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 2, describeResult(r));
    assert.match(lines[0], /^tspod: no matches found for "nosuchpod1"/, describeResult(r));
    assert.match(lines[1], /^tspod: no matches found for "nosuchpod2"/, describeResult(r));
    assert.match(r.stdout, new RegExp(`"${uuid}"`), describeResult(r));
    const s = await dd.tspod(['stop', 'nosuchpod1', 'nosuchpod2']);
    assert.equal(s.code, 254, describeResult(s));
    assert.equal(s.stderr.split('\n').filter(Boolean).length, 2, describeResult(s));
  });
});
