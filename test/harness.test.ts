// Smoke tests of the test harness itself: fixtures, tree diffs, the registry
// (plain, htpasswd, token, TLS), the CLI runner and the leak checks.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto, { randomUUID } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import {
  FIXTURES,
  FIXTURE_NAMES,
  INDEX_ARM64_REF,
  ensureFixtures,
  readLayoutImage,
  refRuntimeConfig,
  listTree,
  diffTrees,
  compareDirs,
  assertSameTree,
  startRegistry,
  makeDataDir,
  makeTempDir,
  tspodBuilt,
  takeSnapshot,
  findLeaks,
  cleanupLeaks,
  mountsUnder,
  parseChallenge,
  podCgroups,
  CNI_LEASES_DIR,
  type Registry,
} from './harness/index.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const ACCEPT_ALL = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(', ');

before(() => ensureFixtures());

describe('fixtures', () => {
  test('every fixture has its source and a reference rootfs', () => {
    for (const name of FIXTURE_NAMES) {
      const f = FIXTURES[name]!;
      if (f.file) assert.ok(fs.statSync(f.file).size > 0, `${name}: ${f.file}`);
      if (f.tag) readLayoutImage(f.tag); // throws if the tag is missing
      assert.ok(fs.statSync(path.join(f.refRootfs, 'bin', 'busybox')).isFile(), `${name}: reference has /bin/busybox`);
      assert.equal(fs.readlinkSync(path.join(f.refRootfs, 'bin', 'sh')), 'busybox');
    }
  });

  test('busybox has /etc/passwd and /etc/group with root and user 1000', () => {
    const rootfs = FIXTURES.busybox!.refRootfs;
    assert.match(fs.readFileSync(path.join(rootfs, 'etc/passwd'), 'utf8'), /^user:x:1000:1000:/m);
    assert.match(fs.readFileSync(path.join(rootfs, 'etc/group'), 'utf8'), /^user:x:1000:/m);
    assert.match(fs.readFileSync(path.join(rootfs, 'etc/group'), 'utf8'), /^users:x:100:user$/m);
  });

  test('multi: layers, whiteouts, opaque dirs and special files in the reference', () => {
    const img = readLayoutImage('multi');
    assert.ok(img.manifest.layers!.length >= 4, 'at least 4 layers');
    const rootfs = FIXTURES.multi!.refRootfs;
    const tree = listTree(rootfs);
    const at = (p: string) => tree.get(p);
    assert.equal(at('/data/gone'), undefined, 'whited-out file is gone');
    assert.equal(at('/data/later-hidden'), undefined, 'whiteout from the GNU tar layer');
    assert.deepEqual([...tree.keys()].filter((p) => p.startsWith('/data/opaque/')), ['/data/opaque/new']);
    assert.deepEqual([...tree.keys()].filter((p) => p.startsWith('/data/opq2/')), ['/data/opq2/fresh']);
    assert.equal(at('/data/swap')?.type, 'file');
    assert.equal(at('/data/swap2')?.type, 'dir');
    assert.equal(at('/data/fifo')?.type, 'fifo');
    assert.equal(at('/data/link')?.target, '../etc/passwd');
    assert.deepEqual(at('/data/hard')?.links, ['/data/hard', '/data/keep']);
    assert.equal(at('/data/suid')?.mode, 0o4755);
    assert.equal(at('/data/sgid')?.mode, 0o2775);
    assert.equal(at('/data/secret')?.mode, 0o600);
    assert.equal(at('/data/owned')?.uid, 1000);
    assert.equal(at('/data/userdir')?.gid, 100);
    assert.equal(at('/data/empty')?.type, 'dir');
    assert.ok(at('/data/ünïcödé file'));
    const cfg = img.config!.config as { User?: string; Entrypoint?: string[]; WorkingDir?: string; ExposedPorts?: object; Volumes?: object };
    assert.equal(cfg.User, 'user');
    assert.deepEqual(cfg.Entrypoint, ['/bin/sh', '-c']);
    assert.equal(cfg.WorkingDir, '/data');
    assert.deepEqual(Object.keys(cfg.ExposedPorts ?? {}).sort(), ['53/udp', '80/tcp']);
    assert.equal(refRuntimeConfig('multi').process.user.uid, 1000);
  });

  test('index: arm64 first, amd64 second; each reference names its platform', () => {
    const idx = readLayoutImage('index');
    assert.equal(idx.descriptor.mediaType, OCI_INDEX);
    assert.deepEqual(
      idx.manifest.manifests!.map((m) => m.platform?.architecture),
      ['arm64', 'amd64'],
    );
    assert.equal(fs.readFileSync(path.join(FIXTURES.index!.refRootfs, 'etc/platform'), 'utf8'), 'amd64\n');
    assert.equal(fs.readFileSync(path.join(INDEX_ARM64_REF, 'etc/platform'), 'utf8'), 'arm64\n');
    assert.equal(readLayoutImage('index-arm64').config!.architecture, 'arm64');
  });

  test('zstd and uncompressed layers; every form of multi unpacks the same', () => {
    for (const l of readLayoutImage('zstd').manifest.layers!) assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    for (const l of readLayoutImage('uncompressed').manifest.layers!) assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar');
    for (const name of ['schema2', 'zstd', 'oci-archive', 'docker-archive']) {
      assert.deepEqual(compareDirs(FIXTURES.multi!.refRootfs, FIXTURES[name]!.refRootfs), [], name);
    }
    assertSameTree(FIXTURES.busybox!.refRootfs, FIXTURES.uncompressed!.refRootfs);
    assertSameTree(FIXTURES.busybox!.refRootfs, FIXTURES.aci!.refRootfs, { root: false });
  });

  test('the ACIs: manifest first, then rootfs/; every compression holds the same tar', () => {
    const plain = fs.readFileSync(FIXTURES.aci!.file!);
    const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
    for (const [name, tool] of [['aci-gz', 'gzip'], ['aci-bz2', 'bzip2'], ['aci-xz', 'xz']] as const) {
      const r = spawnSync(tool, ['-dc', FIXTURES[name]!.file!], { maxBuffer: 64 << 20 });
      assert.equal(r.status, 0);
      assert.equal(sha(r.stdout), sha(plain), name);
    }
    const list = spawnSync('tar', ['-tf', FIXTURES.aci!.file!], { encoding: 'utf8' }).stdout.split('\n');
    assert.equal(list[0], 'manifest');
    assert.ok(list.includes('rootfs/bin/busybox'));
    const m = JSON.parse(spawnSync('tar', ['-xOf', FIXTURES.aci!.file!, 'manifest'], { encoding: 'utf8' }).stdout) as { acKind: string; name: string; app: { exec: string[] } };
    assert.equal(m.acKind, 'ImageManifest');
    assert.equal(m.name, 'example.com/busybox-aci');
    assert.deepEqual(m.app.exec, ['/bin/sh', '-c', 'echo hi']);
  });
});

describe('tree diff', () => {
  test('equal trees have no differences; every kind of change is reported', (t) => {
    const base = makeTempDir('tree');
    t.after(() => fs.rmSync(base, { recursive: true, force: true }));
    const a = path.join(base, 'a');
    const b = path.join(base, 'b');
    for (const d of [a, b]) {
      fs.mkdirSync(path.join(d, 'dir'), { recursive: true });
      fs.writeFileSync(path.join(d, 'dir/file'), 'content');
      fs.writeFileSync(path.join(d, 'mode'), 'x');
      fs.writeFileSync(path.join(d, 'owner'), 'x');
      fs.writeFileSync(path.join(d, 'gone'), 'x');
      fs.writeFileSync(path.join(d, 'h1'), 'h');
      fs.writeFileSync(path.join(d, 'h2'), 'h');
      fs.symlinkSync('target-a', path.join(d, 'link'));
      fs.mkdirSync(path.join(d, 'typechange'));
    }
    fs.linkSync(path.join(a, 'h1'), path.join(a, 'h3'));
    fs.writeFileSync(path.join(b, 'h3'), 'h');
    fs.rmSync(path.join(a, 'h2'));
    fs.linkSync(path.join(a, 'h1'), path.join(a, 'h2'));
    fs.rmSync(path.join(b, 'h2'));
    fs.linkSync(path.join(b, 'h1'), path.join(b, 'h2'));
    assert.deepEqual(compareDirs(a, a), []);

    fs.writeFileSync(path.join(b, 'dir/file'), 'CONTENT');
    fs.chmodSync(path.join(b, 'mode'), 0o4755);
    fs.chownSync(path.join(b, 'owner'), 1000, 1000);
    fs.rmSync(path.join(b, 'gone'));
    fs.writeFileSync(path.join(b, 'extra'), '');
    fs.rmSync(path.join(b, 'link'));
    fs.symlinkSync('target-b', path.join(b, 'link'));
    fs.rmdirSync(path.join(b, 'typechange'));
    fs.writeFileSync(path.join(b, 'typechange'), '');
    const diffs = compareDirs(a, b);
    const text = diffs.join('\n');
    assert.match(text, /^\/dir\/file: content differs/m);
    assert.match(text, /^\/mode: mode 0644 != 4755/m);
    assert.match(text, /^\/owner: owner 0:0 != 1000:1000/m);
    assert.match(text, /^\/gone: missing from actual/m);
    assert.match(text, /^\/extra: not in expected/m);
    assert.match(text, /^\/link: symlink target "target-a" != "target-b"/m);
    assert.match(text, /^\/typechange: type dir in expected, file in actual/m);
    assert.match(text, /^\/h1: hardlinks \[\/h1 \/h2 \/h3\] != \[\/h1 \/h2\]/m);
    assert.match(text, /^\/h3: hardlinks \[\/h1 \/h2 \/h3\] != \[\]/m);
    assert.throws(() => assertSameTree(a, b), /difference\(s\)/);
    // ignore, mtime and labels
    assert.deepEqual(
      diffTrees(listTree(a, { ignore: ['/dir', '/mode', '/owner', '/gone', '/extra', '/link', '/typechange', '/h1', '/h2', '/h3'] }), listTree(b, { ignore: (p) => p !== '/' })),
      [],
    );
    fs.utimesSync(path.join(b, 'h1'), 1000, 1000);
    assert.match(compareDirs(a, b, { mtime: true, labels: ['umoci', 'tspod'] }).join('\n'), /^\/h1: mtime .* \(umoci != tspod\)/m);
  });
});

async function manifestOf(reg: Registry, repo: string, ref: string): Promise<{ mediaType: string; body: Record<string, unknown>; digest: string; bodyDigest: string }> {
  const r = await reg.request(`/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT_ALL } });
  assert.equal(r.status, 200, `GET manifest ${repo}:${ref}: ${r.status} ${r.text()}`);
  return {
    mediaType: String(r.headers['content-type']),
    body: r.json(),
    digest: String(r.headers['docker-content-digest']),
    bodyDigest: `sha256:${crypto.createHash('sha256').update(r.body).digest('hex')}`,
  };
}

describe('registry', () => {
  test('starts on 127.0.0.1, serves pushed fixtures, stops and cleans up', async (t) => {
    const reg = await startRegistry({ t });
    assert.match(reg.host, /^127\.0\.0\.1:\d+$/);
    assert.equal(fs.readFileSync(`/proc/${reg.pid}/cmdline`, 'utf8').split('\0')[0], '/usr/bin/docker-registry');
    const ping = await reg.request('/v2/');
    assert.equal(ping.status, 200);
    assert.equal(ping.headers['docker-distribution-api-version'], 'registry/2.0');

    assert.equal(await reg.pushFixture('busybox'), `docker://${reg.host}/busybox:latest`);
    await reg.pushFixture('schema2');
    await reg.pushFixture('index');
    await reg.pushFixture('manifest-list');
    await reg.pushFixture('zstd', 'nested/path/zstd:v1');

    const catalog = (await reg.request('/v2/_catalog')).json<{ repositories: string[] }>();
    assert.deepEqual(catalog.repositories.sort(), ['busybox', 'index', 'manifest-list', 'nested/path/zstd', 'schema2']);

    const bb = await manifestOf(reg, 'busybox', 'latest');
    assert.equal(bb.mediaType, OCI_MANIFEST);
    assert.equal(bb.digest, bb.bodyDigest);
    assert.equal(bb.digest, readLayoutImage('busybox').descriptor.digest, 'pushed unchanged');
    const layer = (bb.body.layers as { digest: string; size: number }[])[0]!;
    const blob = await reg.request(`/v2/busybox/blobs/${layer.digest}`);
    assert.equal(blob.status, 200);
    assert.equal(blob.body.length, layer.size);

    assert.equal((await manifestOf(reg, 'schema2', 'latest')).mediaType, DOCKER_MANIFEST);
    const idx = await manifestOf(reg, 'index', 'latest');
    assert.equal(idx.mediaType, OCI_INDEX);
    assert.equal((idx.body.manifests as unknown[]).length, 2);
    assert.equal((await manifestOf(reg, 'manifest-list', 'latest')).mediaType, DOCKER_LIST);
    const z = await manifestOf(reg, 'nested/path/zstd', 'v1');
    assert.ok((z.body.layers as { mediaType: string }[]).every((l) => l.mediaType.endsWith('+zstd')));

    await reg.stop();
    assert.equal(fs.existsSync(reg.dir), false, 'registry dir removed');
    assert.equal(fs.existsSync(`/proc/${reg.pid}/cmdline`) && fs.readFileSync(`/proc/${reg.pid}/cmdline`, 'utf8').includes('docker-registry'), false, 'process gone');
    await assert.rejects(reg.request('/v2/'));
  });

  test('htpasswd basic auth', async (t) => {
    const reg = await startRegistry({ t, auth: 'htpasswd' });
    const anon = await reg.request('/v2/', { auth: false });
    assert.equal(anon.status, 401);
    assert.equal(parseChallenge(String(anon.headers['www-authenticate'])).scheme, 'basic');
    await assert.rejects(reg.push(FIXTURES.busybox!.registry!.skopeoSource, 'busybox:latest', { creds: 'none' }));
    await reg.pushFixture('busybox');
    assert.equal((await reg.request('/v2/')).status, 200);
    assert.equal((await manifestOf(reg, 'busybox', 'latest')).mediaType, OCI_MANIFEST);
  });

  test('token (Bearer) auth with a token server on 127.0.0.1', async (t) => {
    const reg = await startRegistry({ t, auth: 'token' });
    const anon = await reg.request('/v2/busybox/manifests/latest', { auth: false });
    assert.equal(anon.status, 401);
    const ch = parseChallenge(String(anon.headers['www-authenticate']));
    assert.equal(ch.scheme, 'bearer');
    assert.equal(ch.params.realm, reg.token!.url);
    assert.equal(ch.params.service, reg.token!.service);
    assert.equal(ch.params.scope, 'repository:busybox:pull');
    await reg.pushFixture('busybox');
    assert.ok(reg.token!.requests.some((r) => r.outcome === 'granted' && r.account === 'tspod' && r.scopes.some((s) => s.includes('push'))));
    assert.equal((await manifestOf(reg, 'busybox', 'latest')).mediaType, OCI_MANIFEST);
    // a token server that refuses bad credentials
    const bad = await fetch(`${reg.token!.url}?service=${reg.token!.service}&scope=repository:busybox:pull`, {
      headers: { authorization: `Basic ${Buffer.from('tspod:wrong').toString('base64')}` },
    });
    assert.equal(bad.status, 401);
  });

  test('TLS with a self-signed certificate', async (t) => {
    const reg = await startRegistry({ t, tls: true });
    assert.equal(reg.scheme, 'https');
    assert.ok(reg.certPath && fs.existsSync(reg.certPath));
    await reg.pushFixture('busybox');
    assert.equal((await manifestOf(reg, 'busybox', 'latest')).mediaType, OCI_MANIFEST);
    // without the certificate, verification fails
    await assert.rejects(fetch(`${reg.url}/v2/`));
  });
});

describe('cli', () => {
  test('a data dir per test; tspod runs with --dir', { skip: !tspodBuilt() && 'bin/tspod is not built' }, async (t) => {
    const dd = makeDataDir(t);
    assert.ok(dd.path.includes(`${path.sep}test${path.sep}data${path.sep}`));
    const r = await dd.tspod(['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /tspod Version/);
    const bad = await dd.tspod(['no-such-command']);
    assert.notEqual(bad.code, 0);
    await dd.remove();
    assert.equal(fs.existsSync(dd.path), false);
  });
});

describe('leak checks', () => {
  test('a leftover process and mount are found, then cleaned up', async (t) => {
    const root = makeTempDir('fake-run');
    const before = takeSnapshot(root);
    assert.deepEqual(findLeaks(before), []);
    const mnt = path.join(root, 'mnt');
    fs.mkdirSync(mnt);
    const sleeper = spawn('sleep', ['300'], { cwd: root, stdio: 'ignore' });
    t.after(() => {
      sleeper.kill('SIGKILL');
      spawnSync('umount', ['-l', mnt]);
      fs.rmSync(root, { recursive: true, force: true });
    });
    const mounted = spawnSync('mount', ['-t', 'tmpfs', 'tspod-test-leak', mnt]).status === 0;
    const leaks = findLeaks(before);
    assert.ok(leaks.some((l) => l.kind === 'process' && l.target === sleeper.pid), JSON.stringify(leaks));
    if (mounted) assert.ok(leaks.some((l) => l.kind === 'mount' && l.target === mnt), JSON.stringify(leaks));
    cleanupLeaks(leaks, before);
    assert.deepEqual(mountsUnder([root]), []);
    await new Promise<void>((resolve) => (sleeper.exitCode !== null || sleeper.signalCode !== null ? resolve() : sleeper.once('exit', () => resolve())));
    assert.deepEqual(findLeaks(before), []);
  });

  test('a CNI address lease whose pod is gone is found, then removed; one whose pod still runs is not a leak', { skip: process.getuid?.() !== 0 && 'needs root' }, (t) => {
    const root = makeTempDir('fake-run');
    // host-local's own layout: <dir>/<network>/<address>, the container id on the first line.
    const net = path.join(CNI_LEASES_DIR, `tspod-harness-${process.pid}`);
    const [gone, live] = [randomUUID(), randomUUID()];
    const liveDir = path.join(root, live);
    fs.mkdirSync(liveDir);
    const sleeper = spawn('sleep', ['300'], { cwd: liveDir, stdio: 'ignore' });
    t.after(() => {
      sleeper.kill('SIGKILL');
      fs.rmSync(net, { recursive: true, force: true });
      fs.rmSync(root, { recursive: true, force: true });
    });
    const before = takeSnapshot(root);
    fs.mkdirSync(net, { recursive: true });
    fs.writeFileSync(path.join(net, '10.250.0.2'), `${gone}\r\neth0`);
    fs.writeFileSync(path.join(net, '10.250.0.3'), `${live}\r\neth0`);
    fs.writeFileSync(path.join(net, 'last_reserved_ip.0'), '10.250.0.3');
    const leaks = findLeaks(before).filter((l) => l.kind === 'lease');
    assert.deepEqual(leaks.map((l) => l.target), [path.join(net, '10.250.0.2')], JSON.stringify(leaks));
    cleanupLeaks(leaks, before);
    assert.equal(fs.existsSync(path.join(net, '10.250.0.2')), false);
    assert.equal(fs.existsSync(path.join(net, '10.250.0.3')), true, 'the running pod keeps its address');
  });

  // A cgroup hierarchy to make a pod's cgroups in: pure v2's root, else v1's pids.
  const cgroupBase = ['/sys/fs/cgroup/pids', '/sys/fs/cgroup'].find((d) => fs.existsSync(path.join(d, 'cgroup.procs')) && (d !== '/sys/fs/cgroup' || fs.existsSync('/sys/fs/cgroup/cgroup.controllers')));
  const noCgroups = process.getuid?.() !== 0 ? 'needs root' : !cgroupBase && 'no cgroup v1 pids hierarchy or cgroup2 root';

  test('a pod cgroup left behind (tspod/<uuid> and below) is found, then removed', { skip: noCgroups }, (t) => {
    const root = makeTempDir('fake-run');
    const uuid = randomUUID();
    const pod = path.join(cgroupBase!, 'tspod', uuid);
    t.after(() => {
      for (const d of [path.join(pod, 'app-x'), path.join(pod, 'init'), pod]) {
        try {
          fs.rmdirSync(d);
        } catch {
          /* removed by the test */
        }
      }
      fs.rmSync(root, { recursive: true, force: true });
    });
    const before = takeSnapshot(root);
    fs.mkdirSync(path.join(pod, 'init'), { recursive: true });
    fs.mkdirSync(path.join(pod, 'app-x'));
    const leaks = findLeaks(before).filter((l) => l.kind === 'cgroup');
    // The pod's cgroup, its init and its app: each a leak, although only the pod's own name is a UUID.
    assert.deepEqual(leaks.map((l) => l.target).sort(), [pod, path.join(pod, 'app-x'), path.join(pod, 'init')].sort(), JSON.stringify(leaks));
    assert.deepEqual(podCgroups(uuid).sort(), [pod, path.join(pod, 'app-x'), path.join(pod, 'init')].sort());
    cleanupLeaks(leaks, before);
    assert.equal(fs.existsSync(pod), false);
    assert.deepEqual(podCgroups(uuid), []);
    assert.deepEqual(findLeaks(before).filter((l) => l.kind === 'cgroup'), []);
  });
});
