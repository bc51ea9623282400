// Inside a pod (issue 3, "Inside the pod"): a probe app reports what it sees,
// through `run` and through `enter` (which must see the same namespaces,
// environment, credentials and capabilities as the app, never more).
// Real namespaces and mounts: needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, type DataDir } from './harness/index.js';
import {
  BUSYBOX,
  DEFAULT_CAPS,
  ENTER_TERM,
  MULTI,
  SKIP,
  allProcesses,
  appLayers,
  descendants,
  hostNs,
  ok,
  startTspod,
  stopAndWait,
  withProbedPod,
  withoutShellVars,
  type Probe,
  removeScratchDirs,
  scratchDir,
} from './pods-util.js';

let dd: DataDir;
let busyboxId = '';

before(async () => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'pods-inside');
  // Import the stage1 and the images once, before tests run side by side.
  await ok(dd, ['fetch', BUSYBOX, MULTI]);
  const prepared = await ok(dd, ['prepare', '--quiet', BUSYBOX]);
  await ok(dd, ['rm', prepared.stdout.trim()]);
  const images = JSON.parse((await ok(dd, ['image', 'list', '--format=json'])).stdout) as Array<{ id: string; name: string }>;
  busyboxId = images.find((i) => i.name.endsWith(':busybox'))!.id;
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

/** Both views of the pod: the app's (run) and enter's. */
function views(run: Probe, enter: Probe): Array<[string, Probe]> {
  return [
    ['run', run],
    ['enter', enter],
  ];
}

/** The same credentials, capabilities, namespaces and environment (enter never gets more than the app). */
function assertEnterMatchesApp(run: Probe, enter: Probe): void {
  for (const k of ['uid', 'gid', 'groups', 'hostname', 'ns.mnt', 'ns.pid', 'ns.uts', 'ns.ipc', 'ns.net', 'pid1', 'root-writable', 'sys-writable']) {
    assert.equal(enter.get(k), run.get(k), `enter sees ${k} as the app does`);
  }
  assert.deepEqual(enter.caps(), run.caps(), 'enter has exactly the app capabilities');
  assert.deepEqual(withoutShellVars(enter.env(), 'TERM'), withoutShellVars(run.env(), 'TERM'), "enter has the app's environment");
  assert.equal(enter.env().get('TERM'), ENTER_TERM, "enter keeps the caller's TERM");
}

describe('inside a pod', { skip: SKIP, concurrency: true }, () => {
  test('own mnt/pid/uts/ipc/net namespaces, pid 1 is the helper, overlay rootfs, /proc, read-only /sys, /dev, /etc files, default hostname; no Node process stays', async () => {
    await withProbedPod(
      dd,
      { appFlags: ['--name=probe'], extra: 'echo app-data > /written-by-app' },
      async (pod) => {
        const enter = await pod.enter(undefined, 'p seen "$(cat /written-by-app)"');
        assert.equal(enter.get('seen'), 'app-data', "enter is in the app's rootfs");
        for (const [who, p] of views(pod.run, enter)) {
          for (const ns of ['mnt', 'pid', 'uts', 'ipc'] as const) assert.notEqual(p.get(`ns.${ns}`), hostNs(ns), `${who}: own ${ns} namespace`);
          assert.notEqual(p.get('ns.net'), hostNs('net'), `${who}: --net=default (the default): a network namespace of the pod's own`);
          assert.match(p.get('pid1'), /^tspod-helper run /, `${who}: pid 1 is the helper`);
          assert.notEqual(p.get('pid'), '1');
          assert.equal(p.get('hostname'), `tspod-${pod.uuid}`, `${who}: default hostname`);
          assert.equal(p.get('etc-hostname'), `tspod-${pod.uuid}`, `${who}: /etc/hostname`);
          assert.ok(
            p.lines('hosts').some((l) => /^127\.0\.0\.1\s/.test(l) && l.split(/\s+/).includes('localhost') && l.split(/\s+/).includes(`tspod-${pod.uuid}`)),
            `${who}: /etc/hosts fallback with the hostname: ${p.lines('hosts').join(' | ')}`,
          );
          assert.equal(p.get('mtab'), '../proc/self/mounts', `${who}: /etc/mtab`);
          const dev = p.get('dev').split(' ');
          for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'console', 'ptmx', 'pts', 'shm']) assert.ok(dev.includes(d), `${who}: /dev/${d} in ${dev}`);
          assert.equal(p.get('root-writable'), 'yes', `${who}: the rootfs is writable`);
          assert.equal(p.get('sys-writable'), 'no', `${who}: /sys is read-only`);
          assert.equal(p.get('proc-mounted'), 'yes');
          const m = p.mounts();
          const root = m.get('/')!;
          assert.equal(root.fsType, 'overlay', `${who}: the rootfs is an overlay`);
          assert.ok(root.superOptions.includes(`upperdir=${pod.dir}/overlay/probe/upper`), `${who}: upper dir in the pod: ${root.superOptions}`);
          const lower = root.superOptions.find((o) => o.startsWith('lowerdir='))!.slice('lowerdir='.length).split(':');
          assert.deepEqual(lower, [...appLayers(pod.dir, 'probe')].reverse(), `${who}: lower dirs are the image's shared layers`);
          assert.equal(m.get('/proc')?.fsType, 'proc');
          assert.equal(m.get('/sys')?.fsType, 'sysfs');
          assert.ok(m.get('/sys')!.options.includes('ro'), `${who}: /sys mounted read-only`);
          assert.equal(m.get('/dev')?.fsType, 'tmpfs');
          assert.equal(m.get('/dev/pts')?.fsType, 'devpts');
          assert.equal(m.get('/dev/shm')?.fsType, 'tmpfs');
          assert.equal(m.get('/etc/hostname')?.root, '/sys/kernel/hostname', `${who}: /etc/hostname is the pod's kernel hostname`);
          assert.equal(p.get('uid'), '0');
          assert.equal(p.get('gid'), '0');
          assert.equal(p.get('cwd'), '/', `${who}: the image's workingDirectory`);
          const caps = p.caps();
          assert.equal(caps.CapBnd, DEFAULT_CAPS, `${who}: appc's default bounding set`);
          assert.equal(caps.CapEff, DEFAULT_CAPS);
          assert.equal(caps.CapAmb, '0000000000000000');
        }
        assert.equal(enter.get('ns.mnt'), pod.run.get('ns.mnt'), "enter joins the app's mount namespace");
        assertEnterMatchesApp(pod.run, enter);

        // Writes go to the pod's upper directory; the image layers are untouched.
        assert.equal(fs.readFileSync(path.join(pod.dir, 'overlay/probe/upper/written-by-app'), 'utf8'), 'app-data\n');
        for (const layer of appLayers(pod.dir, 'probe')) assert.ok(!fs.existsSync(path.join(layer, 'written-by-app')), `layer ${layer} untouched`);

        // While the pod runs, the host side is the helper: no node, no stage1 SEA.
        const tree = descendants(pod.bg.pid);
        const byPodDir = allProcesses().filter((p) => p.cmdline.includes(pod.dir) || p.cwd.startsWith(pod.dir));
        const hostPidNs = hostNs('pid');
        const hostSide = [...tree, ...byPodDir].filter((p) => p.pidNs === hostPidNs);
        assert.ok(hostSide.length >= 2, `the outer helper and pod pid 1: ${JSON.stringify(hostSide)}`);
        const nodeExe = fs.realpathSync(process.execPath);
        for (const p of [...tree, ...byPodDir]) {
          assert.notEqual(p.comm, 'node', `no node process: ${JSON.stringify(p)}`);
          assert.ok(p.exe !== nodeExe && !/ld-linux|tspod-stage1/.test(p.exe), `no Node/SEA process stays: ${JSON.stringify(p)}`);
        }
        // The helper runs from a sealed memfd copy of itself (CVE-2019-5736: the host's
        // binary never backs a helper process).
        const helperExe = /^\/memfd:tspod-helper \(deleted\)$/;
        for (const p of hostSide) assert.match(p.exe, helperExe, `host-side processes are the helper: ${JSON.stringify(p)}`);
        assert.match(tree[0].exe, helperExe, 'the `tspod run` process itself became the helper');
      },
    );
  });

  test("environment: image < --inherit-env < --set-env-file < --set-env < --environment; defaults; AC_APP_NAME and container", async () => {
    const envFile = path.join(dd.path, 'env-file');
    fs.writeFileSync(envFile, '# comment\n; another\n\nFILE_VS_INH=file\nSET_VS_FILE=file\nPATH=/bin:/from-file\n');
    await withProbedPod(
      dd,
      {
        podFlags: ['--inherit-env', `--set-env-file=${envFile}`, '--set-env=SET_VS_FILE=set', '--set-env=APP_VS_SET=set'],
        appFlags: ['--name=envy', '--environment=APP_VS_SET=app', '--environment=SHELL=/bin/ash'],
        env: { GREETING: 'from-host', INH_ONLY: 'host', FILE_VS_INH: 'host', HOME: '/host-home', USER: 'hostuser' },
      },
      async (pod) => {
        const enter = await pod.enter();
        for (const [who, p] of views(pod.run, enter)) {
          const env = p.env();
          const want: Record<string, string> = {
            GREETING: 'hello', // the image's: --inherit-env only fills gaps
            INH_ONLY: 'host',
            FILE_VS_INH: 'file',
            SET_VS_FILE: 'set',
            APP_VS_SET: 'app',
            PATH: '/bin:/from-file', // the file beats the image
            SHELL: '/bin/ash', // defaults fill only what is missing
            HOME: '/host-home', // inherited: the image has no HOME
            USER: 'hostuser',
            LOGNAME: process.env.LOGNAME ?? 'root',
            AC_APP_NAME: 'envy',
            container: 'tspod',
          };
          for (const [k, v] of Object.entries(want)) assert.equal(env.get(k), v, `${who}: ${k}`);
        }
        assertEnterMatchesApp(pod.run, enter);
      },
    );
    // Without --inherit-env the defaults fill PATH, HOME, USER, LOGNAME, SHELL.
    await withProbedPod(dd, { appFlags: ['--name=plain'], env: { INH_ONLY: 'host' } }, async (pod) => {
      const enter = await pod.enter();
      for (const [who, p] of views(pod.run, enter)) {
        const env = p.env();
        assert.equal(env.get('INH_ONLY'), undefined, `${who}: nothing of the host's environment without --inherit-env`);
        assert.equal(env.get('PATH'), '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
        assert.equal(env.get('HOME'), '/root');
        assert.equal(env.get('USER'), 'root');
        assert.equal(env.get('LOGNAME'), 'root');
        assert.equal(env.get('SHELL'), '/bin/sh');
        assert.equal(env.get('GREETING'), 'hello', "the image's environment");
        assert.equal(env.get('AC_APP_NAME'), 'plain');
        assert.equal(env.get('container'), 'tspod');
      }
      assertEnterMatchesApp(pod.run, enter);
    });
  });

  test('--user/--group by number, by name and by path; --supplementary-gids; a non-root app has no effective capabilities', async () => {
    const cases: Array<{ flags: string[]; uid: string; gid: string; groups: string[] }> = [
      { flags: ['--user=1000', '--group=100', '--supplementary-gids=65534,1000'], uid: '1000', gid: '100', groups: ['100', '65534', '1000'] },
      { flags: ['--user=user', '--group=users'], uid: '1000', gid: '100', groups: ['100'] },
      { flags: ['--user=/home/user', '--group=/home/user'], uid: '1000', gid: '1000', groups: ['1000'] },
      { flags: ['--user=nobody', '--group=nogroup', '--supplementary-gids=100'], uid: '65534', gid: '65534', groups: ['65534', '100'] },
    ];
    await Promise.all(
      cases.map((c) =>
        withProbedPod(dd, { appFlags: c.flags }, async (pod) => {
          const enter = await pod.enter();
          for (const [who, p] of views(pod.run, enter)) {
            assert.equal(p.get('uid'), c.uid, `${who} ${c.flags}: uid`);
            assert.equal(p.get('gid'), c.gid, `${who} ${c.flags}: gid`);
            assert.deepEqual(new Set(p.get('groups').split(' ')), new Set(c.groups), `${who} ${c.flags}: groups`);
            const caps = p.caps();
            assert.equal(caps.CapEff, '0000000000000000', `${who}: no effective capabilities for uid ${c.uid}`);
            assert.equal(caps.CapBnd, DEFAULT_CAPS);
          }
          assertEnterMatchesApp(pod.run, enter);
        }),
      ),
    );
  });

  test("working directory: the image's, and --working-dir; --hostname; --net=none", async () => {
    await Promise.all([
      withProbedPod(dd, { podFlags: ['--net=none'], extra: 'p links "$(ls /sys/class/net | tr \'\\n\' \' \')"' }, async (pod) => {
        const enter = await pod.enter(undefined, 'p links "$(ls /sys/class/net | tr \'\\n\' \' \')"');
        for (const [who, p] of views(pod.run, enter)) {
          assert.notEqual(p.get('ns.net'), hostNs('net'), `${who}: --net=none: its own network namespace`);
          assert.equal(p.get('links'), 'lo ', `${who}: only loopback`);
        }
        assertEnterMatchesApp(pod.run, enter);
      }),
      withProbedPod(dd, { image: MULTI, appFlags: ['--name=multi'] }, async (pod) => {
        const enter = await pod.enter();
        for (const [who, p] of views(pod.run, enter)) {
          assert.equal(p.get('cwd'), '/data', `${who}: multi's workingDirectory`);
          assert.equal(p.get('uid'), '1000', `${who}: multi's USER`);
        }
        assertEnterMatchesApp(pod.run, enter);
      }),
      withProbedPod(dd, { podFlags: ['--hostname=probe-host'], appFlags: ['--working-dir=/var'] }, async (pod) => {
        const enter = await pod.enter();
        for (const [who, p] of views(pod.run, enter)) {
          assert.equal(p.get('cwd'), '/var', `${who}: --working-dir`);
          assert.equal(p.get('hostname'), 'probe-host', `${who}: --hostname`);
          assert.equal(p.get('etc-hostname'), 'probe-host');
          assert.ok(p.lines('hosts').some((l) => l.split(/\s+/).includes('probe-host')), `${who}: /etc/hosts names the hostname`);
        }
        assertEnterMatchesApp(pod.run, enter);
      }),
    ]);
  });

  test('host volumes: read-write, readOnly (submounts too), recursive and not', async () => {
    const host = scratchDir('host-volume');
    fs.writeFileSync(path.join(host, 'f'), 'top');
    fs.mkdirSync(path.join(host, 'sub'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', 'tspod-test-sub', path.join(host, 'sub')]);
    assert.equal(mounted.status, 0, String(mounted.stderr));
    try {
      fs.writeFileSync(path.join(host, 'sub', 'g'), 'inner');
      const extra = `
p rw-f "$(cat /rw/f)"
p rw-sub "$(cat /rw/sub/g 2>&1)"
if echo from-$1 > /rw/from-$1; then p rw-write ok; else p rw-write fail; fi
p ro-f "$(cat /ro/f)"
if touch /ro/x 2>/dev/null; then p ro-write ok; else p ro-write fail; fi
if touch /ro/sub/x 2>/dev/null; then p ro-sub-write ok; else p ro-sub-write fail; fi
p ro-sub "$(cat /ro/sub/g 2>&1)"
p nonrec-f "$(cat /nonrec/f)"
p nonrec-sub "$(ls -A /nonrec/sub | tr '\\n' ' ')"
p rofile "$(cat /rofile)"
if echo x >> /rofile 2>/dev/null; then p rofile-write ok; else p rofile-write fail; fi`;
      await withProbedPod(
        dd,
        {
          podFlags: [
            `--volume=rw,kind=host,source=${host}`,
            `--volume=ro,kind=host,source=${host},readOnly=true`,
            `--volume=nonrec,kind=host,source=${host},recursive=false`,
            `--volume=rofile,kind=host,source=${path.join(host, 'f')},readOnly=true`,
          ],
          appFlags: ['--mount=volume=rw,target=/rw', '--mount=volume=ro,target=/ro', '--mount=volume=nonrec,target=/nonrec', '--mount=volume=rofile,target=/rofile'],
          extra: extra.replace(/\$1/g, 'app'),
        },
        async (pod) => {
          const enter = await pod.enter(undefined, extra.replace(/\$1/g, 'enter'));
          for (const [who, p] of views(pod.run, enter)) {
            assert.equal(p.get('rw-f'), 'top', who);
            assert.equal(p.get('rw-sub'), 'inner', `${who}: volumes are recursive by default`);
            assert.equal(p.get('rw-write'), 'ok', who);
            assert.equal(p.get('ro-f'), 'top', who);
            assert.equal(p.get('ro-write'), 'fail', `${who}: readOnly=true`);
            assert.equal(p.get('ro-sub'), 'inner', who);
            assert.equal(p.get('ro-sub-write'), 'fail', `${who}: a read-only volume's submounts are read-only too`);
            assert.equal(p.get('nonrec-f'), 'top', who);
            assert.equal(p.get('nonrec-sub'), '', `${who}: recursive=false does not bring the submount`);
            assert.equal(p.get('rofile'), 'top', `${who}: a read-only single-file volume`);
            assert.equal(p.get('rofile-write'), 'fail', `${who}: a read-only single-file volume is read-only`);
          }
          assertEnterMatchesApp(pod.run, enter);
          assert.equal(fs.readFileSync(path.join(host, 'from-app'), 'utf8'), 'from-app\n', 'the app wrote to the host directory');
          assert.equal(fs.readFileSync(path.join(host, 'from-enter'), 'utf8'), 'from-enter\n');
          assert.ok(!fs.existsSync(path.join(host, 'x')));
        },
      );
    } finally {
      spawnSync('umount', [path.join(host, 'sub')]);
    }
  });

  test('several apps at once: shared pid/uts/ipc/net namespaces, each its own rootfs, an empty volume shared (one writes, the other reads)', async () => {
    const bg = startTspod(dd, [
      'run',
      `--uuid-file-save=${path.join(dd.path, 'uuid-two-apps')}`,
      '--volume=shared,kind=empty,mode=0777',
      BUSYBOX,
      '--name=writer',
      '--mount=volume=shared,target=/out',
      '--exec=/bin/sh',
      '--',
      '-c',
      'echo hello-from-writer > /out/msg; echo own > /only-writer; echo writer-wrote; exec sleep 3600',
      '---',
      BUSYBOX,
      '--name=reader',
      '--mount=volume=shared,target=/in',
      '--exec=/bin/sh',
      '--',
      '-c',
      'while [ ! -f /in/msg ]; do sleep 0.05; done; echo "reader-got=$(cat /in/msg)"; exec sleep 3600',
    ]);
    const uuid = await (async () => {
      await bg.waitOutput(/^reader-got=hello-from-writer$/m, 'the reader');
      return fs.readFileSync(path.join(dd.path, 'uuid-two-apps'), 'utf8').trim();
    })().catch(async (e) => {
      bg.proc.kill('SIGTERM');
      await bg.exited;
      throw e;
    });
    try {
      const dir = path.join(dd.path, 'pods/run', uuid);
      assert.equal(fs.readFileSync(path.join(dir, 'sharedVolumes/shared/msg'), 'utf8'), 'hello-from-writer\n', 'the volume lives in the pod');
      const enterProbe = async (app: string, extra: string) => {
        const r = await dd.tspod(['enter', `--app=${app}`, uuid, '/bin/sh', '-c', `p() { printf 'probe.%s=%s\\n' "$1" "$2"; }\n${extra}`]);
        assert.equal(r.code, 0, describeResult(r));
        return r.stdout;
      };
      const nsScript = 'for n in mnt pid uts ipc net; do p "ns.$n" "$(readlink /proc/self/ns/$n)"; done; p own "$(cat /only-writer 2>/dev/null || echo missing)"; p msg "$(cat /in/msg /out/msg 2>/dev/null)"';
      const [w, r] = await Promise.all([enterProbe('writer', nsScript), enterProbe('reader', nsScript)]);
      const get = (out: string, k: string) => new RegExp(`^probe\\.${k.replace('.', '\\.')}=(.*)$`, 'm').exec(out)?.[1];
      for (const ns of ['pid', 'uts', 'ipc', 'net']) assert.equal(get(w, `ns.${ns}`), get(r, `ns.${ns}`), `the apps share the ${ns} namespace`);
      assert.equal(get(w, 'own'), 'own', "the writer's file is in the writer's rootfs");
      assert.equal(get(r, 'own'), 'missing', "…and not in the reader's: each app has its own rootfs");
      assert.equal(get(r, 'msg'), 'hello-from-writer');
      assert.ok(fs.existsSync(path.join(dir, 'overlay/writer/upper/only-writer')));
      assert.ok(!fs.existsSync(path.join(dir, 'overlay/reader/upper/only-writer')));
      const noApp = await dd.tspod(['enter', uuid, '/bin/true']);
      assert.equal(noApp.code, 254, describeResult(noApp));
      assert.match(noApp.stderr, /specify app using "tspod enter --app= \.\.\."/);
    } finally {
      await stopAndWait(dd, bg, uuid);
    }
  });

  test('image mountPoints: matched to a volume by name, else an implicit empty volume pre-filled from the (OCI) image', async () => {
    const host = scratchDir('mountpoint-volume');
    fs.chmodSync(host, 0o755); // the app runs as uid 1000
    fs.writeFileSync(path.join(host, 'hostfile'), 'h');
    const extra = 'p vol "$(ls /data/vol | tr \'\\n\' \' \')"; p opaque "$(ls /data/opaque | tr \'\\n\' \' \')"; p opaque-new "$(cat /data/opaque/new)"';
    await withProbedPod(
      dd,
      { podFlags: [`--volume=volume-data-vol,kind=host,source=${host}`], image: MULTI, appFlags: ['--name=multi'], extra },
      async (pod) => {
        const enter = await pod.enter(undefined, extra);
        for (const [who, p] of views(pod.run, enter)) {
          assert.equal(p.get('vol'), 'hostfile ', `${who}: /data/vol is the volume of that name`);
          assert.equal(p.get('opaque'), 'new ', `${who}: the implicit volume holds the image's content`);
          assert.equal(p.get('opaque-new'), 'new');
          const m = p.mounts();
          assert.ok(m.get('/data/opaque')!.root.endsWith(`/pods/run/${pod.uuid}/sharedVolumes/multi-volume-data-opaque`), `${who}: ${m.get('/data/opaque')!.root}`);
          assert.equal(m.get('/data/vol')!.root, host);
        }
        assertEnterMatchesApp(pod.run, enter);
        const manifest = JSON.parse((await ok(dd, ['cat-manifest', pod.uuid])).stdout) as { volumes: Array<{ name: string; kind: string }> };
        assert.deepEqual(
          manifest.volumes.map((v) => `${v.name}:${v.kind}`).sort(),
          ['multi-volume-data-opaque:empty', 'volume-data-vol:host'],
          'the pod manifest names the implicit volume',
        );
        assert.match(pod.bg.stderr(), /multi-volume-data-opaque/, 'a warning names the implicit volume');
      },
    );
  });

  test('--readonly-rootfs (volumes stay writable) and --no-overlay (a copied rootfs)', async () => {
    await Promise.all([
      withProbedPod(
        dd,
        {
          podFlags: ['--volume=data,kind=empty'],
          appFlags: ['--readonly-rootfs', '--mount=volume=data,target=/data'],
          extra: 'if touch /data/x; then p data-writable yes; else p data-writable no; fi',
        },
        async (pod) => {
          const enter = await pod.enter(undefined, 'if touch /data/y; then p data-writable yes; else p data-writable no; fi');
          for (const [who, p] of views(pod.run, enter)) {
            assert.equal(p.get('root-writable'), 'no', `${who}: --readonly-rootfs`);
            assert.equal(p.get('data-writable'), 'yes', `${who}: a volume inside stays writable`);
            assert.ok(p.mounts().get('/')!.options.includes('ro'));
          }
          assertEnterMatchesApp(pod.run, enter);
        },
      ),
      withProbedPod(dd, { podFlags: ['--no-overlay'], appFlags: ['--name=copy'], extra: 'echo copied > /written' }, async (pod) => {
        const enter = await pod.enter();
        for (const [who, p] of views(pod.run, enter)) {
          const root = p.mounts().get('/')!;
          assert.notEqual(root.fsType, 'overlay', `${who}: --no-overlay`);
          assert.ok(root.root.endsWith(`/pods/run/${pod.uuid}/apps/copy/rootfs`), `${who}: the pod's own copy: ${root.root}`);
          assert.equal(p.get('root-writable'), 'yes');
        }
        assertEnterMatchesApp(pod.run, enter);
        assert.equal(fs.readFileSync(path.join(pod.dir, 'apps/copy/rootfs/written'), 'utf8'), 'copied\n');
        assert.ok(!fs.existsSync(path.join(pod.dir, 'overlay/copy')), 'no overlay directories');
      }),
    ]);
  });

  test('--pod-manifest: the app section replaces the image one; pre-start and post-stop event handlers', async () => {
    const host = scratchDir('event-handlers');
    fs.chmodSync(host, 0o777);
    const manifestFile = path.join(dd.path, 'events.json');
    fs.writeFileSync(
      manifestFile,
      JSON.stringify({
        acKind: 'PodManifest',
        acVersion: '0.8.11',
        apps: [
          {
            name: 'ev',
            image: { id: busyboxId.slice(0, 20) },
            app: {
              exec: ['/bin/sh', '-c', 'echo "main saw: $(cat /tmp/pre-start)"; echo main:$(id -u):$(pwd):$EV_VAR; exit 3'],
              user: 'user',
              group: 'users',
              workingDirectory: '/tmp',
              environment: [{ name: 'EV_VAR', value: 'from-manifest' }],
              eventHandlers: [
                { name: 'pre-start', exec: ['/bin/sh', '-c', 'echo "pre-start:$(id -u):$AC_APP_NAME:$EV_VAR" > /tmp/pre-start'] },
                { name: 'post-stop', exec: ['/bin/sh', '-c', 'echo "post-stop:$(id -u):$(pwd)" > /v/post-stop'] },
              ],
            },
            mounts: [{ volume: 'v', path: '/v' }],
          },
        ],
        volumes: [{ name: 'v', kind: 'host', source: host }],
      }),
    );
    const uuidFile = path.join(dd.path, 'uuid-events');
    const r = await dd.tspod(['run', `--pod-manifest=${manifestFile}`, `--uuid-file-save=${uuidFile}`]);
    assert.equal(r.code, 3, describeResult(r));
    assert.match(r.stdout, /^main saw: pre-start:0:ev:from-manifest$/m, 'pre-start ran first, as root (as in rkt), with the app’s environment');
    assert.match(r.stdout, /^main:1000:\/tmp:from-manifest$/m);
    assert.equal(fs.readFileSync(path.join(host, 'post-stop'), 'utf8'), 'post-stop:0:/tmp\n', 'post-stop ran after the app, as root');
    const status = await ok(dd, ['status', `--uuid-file=${uuidFile}`]);
    assert.match(status.stdout, /^app-ev=3$/m);
  });
});
