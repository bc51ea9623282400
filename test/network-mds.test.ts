// The appc metadata service (issue 8 item 5): `tspod metadata-service` on a
// test port (127.0.0.1 only) and a registration socket in a scratch directory
// (TSPOD_MDS_SOCKET); pods run with --mds-register read their own data through
// AC_METADATA_URL with busybox wget, and the host checks every endpoint's
// status, content type and body with the pod's token. Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describeResult, makeDataDir, makeTempDir, onExit, REPO_ROOT, TSPOD_BIN, type DataDir, type RunResult } from './harness/index.js';
import { BUSYBOX, SKIP, failsWith, ok, podsTree, startTspod, waitFor, type BackgroundPod } from './pods-util.js';

let dd: DataDir;
/** The registration socket's directory: 0755 under /run, so that another user reaches the socket itself. */
let sockDir = '';
let sock = '';
let port = 0;
let service: BackgroundPod | undefined;
let env: Record<string, string> = {};

const hasSystemd = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return p;
}

async function startService(args: string[] = []): Promise<BackgroundPod> {
  const bg = startTspod(dd, ['metadata-service', `--listen-port=${port}`, '--listen-address=127.0.0.1', ...args], { env });
  await bg.waitOutput(/^metadata service listening on 127\.0\.0\.1:\d+; registrations on .*$/m, 'the metadata service');
  return bg;
}

async function stopService(bg: BackgroundPod | undefined): Promise<RunResult | undefined> {
  if (!bg) return undefined;
  if (bg.proc.exitCode === null && bg.proc.signalCode === null) bg.proc.kill('SIGTERM');
  const timer = setTimeout(() => bg.proc.kill('SIGKILL'), 20_000);
  try {
    return await bg.exited;
  } finally {
    clearTimeout(timer);
  }
}

before(async () => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'network-mds');
  // Not under /tmp/tspod-test*: other test runs on this machine remove new directories there.
  sockDir = fs.mkdtempSync('/run/tspod-test-mds-');
  fs.chmodSync(sockDir, 0o755);
  onExit(() => fs.rmSync(sockDir, { recursive: true, force: true }));
  sock = path.join(sockDir, 'metadata-svc.sock');
  env = { TSPOD_MDS_SOCKET: sock };
  port = await freePort();
  await ok(dd, ['fetch', BUSYBOX]);
  service = await startService();
});

after(async () => {
  if (SKIP) return;
  try {
    const r = await stopService(service);
    if (r) assert.equal(r.code, 0, describeResult(r));
    assert.ok(!fs.existsSync(sock), 'the service removed its socket at exit');
  } finally {
    await dd.remove();
    fs.rmSync(sockDir, { recursive: true, force: true });
  }
});

interface Answer {
  status: number;
  type: string | null;
  body: string;
}

async function get(url: string): Promise<Answer> {
  const r = await fetch(url);
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
}

async function post(url: string, form: Record<string, string>): Promise<Answer> {
  const r = await fetch(url, { method: 'POST', body: new URLSearchParams(form) });
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
}

const TEXT = 'text/plain; charset=us-ascii';
const JSON_TYPE = 'application/json';

/** In the pod: its URL, what it reads, and a sign-then-verify round and a tampered one through wget. */
const POD_SCRIPT = `
u="$AC_METADATA_URL/acMetadata/v1"
echo "url=$AC_METADATA_URL"
echo "uuid=$(wget -q -O - "$u/pod/uuid")"
echo "id=$(wget -q -O - "$u/apps/$AC_APP_NAME/image/id")"
sig=$(wget -q -O - --post-data 'content=hello pod' "$u/pod/hmac/sign")
echo "sig=$sig"
enc=$(echo "$sig" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
me=$(wget -q -O - "$u/pod/uuid")
if wget -q -O /dev/null --post-data "content=hello%20pod&uuid=$me&signature=$enc" "$u/pod/hmac/verify"; then echo verify=ok; else echo verify=refused; fi
echo "tampered=$(wget -q -O /dev/null --post-data "content=hello%20pot&uuid=$me&signature=$enc" "$u/pod/hmac/verify" 2>&1 | tr -d '\\n')"
`;

interface PodRun {
  uuid: string;
  url: string;
  token: string;
  out: Map<string, string>;
}

/** `run --mds-register` of a one-shot busybox app that runs POD_SCRIPT; returns what it printed. */
async function runRegistered(name: string, podFlags: string[] = ['--net=host'], appFlags: string[] = []): Promise<PodRun> {
  const uuidFile = path.join(dd.path, `uuid-${name}`);
  const r = await ok(dd, ['run', '--mds-register', `--uuid-file-save=${uuidFile}`, ...podFlags, BUSYBOX, `--name=${name}`, ...appFlags, '--exec=/bin/sh', '--', '-c', POD_SCRIPT], { env });
  const out = new Map<string, string>();
  for (const l of r.stdout.split('\n')) {
    const eq = l.indexOf('=');
    if (eq > 0) out.set(l.slice(0, eq), l.slice(eq + 1));
  }
  const uuid = fs.readFileSync(uuidFile, 'utf8').trim();
  const url = out.get('url') ?? '';
  const m = /^http:\/\/127\.0\.0\.1:(\d+)\/([A-Za-z0-9_-]+)$/.exec(url);
  assert.ok(m, `AC_METADATA_URL: ${url}\n${describeResult(r)}`);
  assert.equal(Number(m[1]), port);
  return { uuid, url, token: m[2], out };
}

function podFile(uuid: string, rel: string): string {
  for (const state of ['run', 'exited-garbage']) {
    const f = path.join(dd.path, 'pods', state, uuid, rel);
    if (fs.existsSync(f)) return f;
  }
  throw new Error(`pod ${uuid} has no ${rel}`);
}

const readJson = (f: string): unknown => JSON.parse(fs.readFileSync(f, 'utf8'));


describe('metadata service with a --net=host pod', { skip: SKIP }, () => {
  let pod: PodRun;
  before(async () => {
    pod = await runRegistered('probe', ['--net=host'], ['--annotation=tspod.test/note=from the pod']);
  });

  test('the app gets AC_METADATA_URL with a 256-bit token that is not its UUID, and reads its own UUID and image ID', () => {
    assert.equal(Buffer.from(pod.token, 'base64url').length, 32, 'a 256-bit token');
    assert.ok(!pod.url.toLowerCase().includes(pod.uuid.replace(/-/g, '')) && !pod.url.includes(pod.uuid), 'the UUID is not in the URL');
    assert.equal(pod.out.get('uuid'), pod.uuid);
    const manifest = readJson(podFile(pod.uuid, 'pod')) as { apps: Array<{ image: { id: string } }> };
    assert.equal(pod.out.get('id'), manifest.apps[0].image.id);
    // enter's env file carries it too (and only root can read it).
    assert.match(fs.readFileSync(podFile(pod.uuid, 'env/probe'), 'utf8'), new RegExp(`^AC_METADATA_URL=${pod.url}$`, 'm'));
    assert.equal(fs.statSync(podFile(pod.uuid, 'mds')).mode & 0o777, 0o600);
  });

  test('HMAC: the pod signs, verify says 200; a tampered content gets 403', async () => {
    assert.equal(Buffer.from(pod.out.get('sig') ?? '', 'base64').length, 64, `a base64 HMAC-SHA512: ${pod.out.get('sig')}`);
    assert.equal(pod.out.get('verify'), 'ok');
    assert.match(pod.out.get('tampered') ?? '', /403 Forbidden/);
  });

  test('every endpoint: status, content type and body', async () => {
    const base = `${pod.url}/acMetadata/v1`;
    const manifest = readJson(podFile(pod.uuid, 'pod')) as { annotations?: unknown; apps: Array<{ name: string; image: { id: string }; annotations?: Array<{ name: string; value: string }> }> };
    const image = readJson(podFile(pod.uuid, 'appsinfo/probe/manifest')) as { annotations?: Array<{ name: string; value: string }> };

    let a = await get(`${base}/pod/uuid`);
    assert.deepEqual([a.status, a.type, a.body], [200, TEXT, pod.uuid]);
    a = await get(`${base}/pod/manifest`);
    assert.deepEqual([a.status, a.type], [200, JSON_TYPE]);
    assert.deepEqual(JSON.parse(a.body), manifest);
    a = await get(`${base}/pod/annotations`);
    assert.deepEqual([a.status, a.type], [200, JSON_TYPE]);
    assert.deepEqual(JSON.parse(a.body), manifest.annotations ?? []);

    a = await get(`${base}/apps/probe/annotations`);
    assert.deepEqual([a.status, a.type], [200, JSON_TYPE]);
    const merged = new Map<string, string>();
    for (const x of [...(image.annotations ?? []), ...(manifest.apps[0].annotations ?? [])]) merged.set(x.name, x.value);
    assert.deepEqual(JSON.parse(a.body), [...merged].map(([name, value]) => ({ name, value })));
    assert.ok((JSON.parse(a.body) as Array<{ name: string; value: string }>).some((x) => x.name === 'tspod.test/note' && x.value === 'from the pod'));
    a = await get(`${base}/apps/probe/image/manifest`);
    assert.deepEqual([a.status, a.type], [200, JSON_TYPE]);
    assert.deepEqual(JSON.parse(a.body), image);
    a = await get(`${base}/apps/probe/image/id`);
    assert.deepEqual([a.status, a.type, a.body], [200, TEXT, manifest.apps[0].image.id]);

    // An app the pod does not have, a path the service does not serve, the wrong method.
    assert.equal((await get(`${base}/apps/nope/image/id`)).status, 404);
    assert.equal((await get(`${base}/pod/nothing`)).status, 404);
    a = await get(`${base}/pod/hmac/sign`);
    assert.equal(a.status, 405);

    // sign from the host gives what the pod got (same key, same UUID, same content); verify it and break it.
    a = await post(`${base}/pod/hmac/sign`, { content: 'hello pod' });
    assert.deepEqual([a.status, a.type, a.body], [200, TEXT, pod.out.get('sig')]);
    const sig = a.body;
    assert.equal((await post(`${base}/pod/hmac/verify`, { content: 'hello pod', uuid: pod.uuid, signature: sig })).status, 200);
    const flipped = Buffer.from(sig, 'base64');
    flipped[0] ^= 1;
    assert.equal((await post(`${base}/pod/hmac/verify`, { content: 'hello pod', uuid: pod.uuid, signature: flipped.toString('base64') })).status, 403);
    assert.equal((await post(`${base}/pod/hmac/verify`, { content: 'hello pod', uuid: '00000000-0000-4000-8000-000000000000', signature: sig })).status, 403, 'another UUID');
    assert.equal((await post(`${base}/pod/hmac/sign`, {})).status, 400, 'no content');
    assert.equal((await post(`${base}/pod/hmac/verify`, { content: 'x', uuid: 'bad', signature: sig })).status, 400, 'a malformed UUID');
    const multipart = new FormData();
    multipart.set('content', 'x');
    assert.equal((await fetch(`${base}/pod/hmac/sign`, { method: 'POST', body: multipart })).status, 415, 'not a urlencoded form');
    assert.equal((await post(`${base}/pod/hmac/sign`, { content: 'x'.repeat(100 * 1024) })).status, 413, 'a form over 64 KiB');
  });

  test('a wrong token gets 403 and nothing else, whatever it asks', async () => {
    const wrong = [
      pod.token.slice(0, -1) + (pod.token.endsWith('A') ? 'B' : 'A'),
      pod.uuid,
      'x',
    ];
    for (const t of wrong) {
      for (const p of ['pod/uuid', 'pod/manifest', 'pod/annotations', 'apps/probe/image/id', 'apps/probe/image/manifest', 'nothing']) {
        const a = await get(`http://127.0.0.1:${port}/${t}/acMetadata/v1/${p}`);
        assert.deepEqual([a.status, a.body], [403, 'Forbidden\n'], `${t} ${p}`);
      }
      const a = await post(`http://127.0.0.1:${port}/${t}/acMetadata/v1/pod/hmac/sign`, { content: 'x' });
      assert.deepEqual([a.status, a.body], [403, 'Forbidden\n']);
    }
    const bare = await get(`http://127.0.0.1:${port}/acMetadata/v1/pod/uuid`);
    assert.deepEqual([bare.status, bare.body], [403, 'Forbidden\n']);
  });
});

describe('pods and tokens', { skip: SKIP }, () => {
  test("pod A's token reads only A's data; gc unregisters a pod (its token gets 403, the other pod's still works)", async () => {
    const a = await runRegistered('alpha');
    const b = await runRegistered('beta');
    assert.notEqual(a.token, b.token);
    const base = (p: PodRun) => `${p.url}/acMetadata/v1`;
    assert.equal((await get(`${base(a)}/pod/uuid`)).body, a.uuid);
    assert.equal((await get(`${base(b)}/pod/uuid`)).body, b.uuid);
    assert.equal((await get(`${base(a)}/apps/beta/image/id`)).status, 404, "A's token does not name B's app");
    assert.equal((JSON.parse((await get(`${base(a)}/pod/manifest`)).body) as { apps: Array<{ name: string }> }).apps[0].name, 'alpha');
    // rm (gc's sweep) unregisters A; B stays.
    await ok(dd, ['rm', a.uuid], { env });
    assert.equal((await get(`${base(a)}/pod/uuid`)).status, 403);
    assert.equal((await get(`${base(b)}/pod/uuid`)).body, b.uuid);
    await ok(dd, ['gc', '--grace-period=0s'], { env });
    assert.equal((await get(`${base(b)}/pod/uuid`)).status, 403, 'gc unregistered B');
  });

  test('run-prepared --mds-register registers the prepared pod', async () => {
    const uuid = (await ok(dd, ['prepare', '--quiet', '--net=host', BUSYBOX, '--exec=/bin/sh', '--', '-c', 'echo "url=$AC_METADATA_URL"; wget -q -O - "$AC_METADATA_URL/acMetadata/v1/pod/uuid"'], { env })).stdout.trim();
    const r = await ok(dd, ['run-prepared', '--mds-register', uuid], { env });
    assert.match(r.stdout, new RegExp(`^url=http://127\\.0\\.0\\.1:${port}/[A-Za-z0-9_-]{43}\\n${uuid}$`, 'm'));
    await ok(dd, ['rm', uuid], { env });
  });

  test('a start that stage1 refuses after --mds-register: the pod is prepared again, and run-prepared without the flag drops the registration (no AC_METADATA_URL, the old token gets 403)', async () => {
    // A named network whose one address is the gateway's: host-local has none to give, so
    // stage1's ADD fails after stage0 registered the pod (stage0 only checks that the network exists).
    const netName = `tsmdsfull${process.pid}`;
    const confDir = makeTempDir('mds-full-net');
    fs.mkdirSync(path.join(confDir, 'net.d'));
    const X = 100 + (process.pid % 100);
    const range = { subnet: `10.234.${X}.0/30`, rangeStart: `10.234.${X}.1`, rangeEnd: `10.234.${X}.1`, gateway: `10.234.${X}.1` };
    fs.writeFileSync(path.join(confDir, 'net.d', '10-full.conf'), JSON.stringify({ cniVersion: '0.4.0', name: netName, type: 'ptp', ipam: { type: 'host-local', ranges: [[range]] } }));
    try {
      const uuid = (await ok(dd, ['prepare', '--quiet', '--net=host', BUSYBOX, '--exec=/bin/sh', '--', '-c', 'echo "url=[$AC_METADATA_URL]"'], { env })).stdout.trim();
      const refused = await dd.tspod([`--local-config=${confDir}`, 'run-prepared', '--mds-register', `--net=${netName}`, uuid], { env });
      failsWith(refused, /no IP addresses available/);
      const mdsFile = path.join(dd.path, 'pods', 'prepared', uuid, 'mds');
      assert.ok(fs.existsSync(mdsFile), 'the refused pod is prepared again, still registered');
      const { token } = readJson(mdsFile) as { token: string };
      const oldUrl = `http://127.0.0.1:${port}/${token}/acMetadata/v1/pod/uuid`;
      assert.equal((await get(oldUrl)).body, uuid, 'the registration the refused start made');
      const r = await ok(dd, ['run-prepared', uuid], { env });
      assert.match(r.stdout, /^url=\[\]$/m, 'no AC_METADATA_URL for a start without --mds-register');
      assert.equal((await get(oldUrl)).status, 403, 'the old registration is gone');
      await ok(dd, ['rm', uuid], { env });
    } finally {
      fs.rmSync(path.join('/var/lib/cni/networks', netName), { recursive: true, force: true });
      fs.rmSync(confDir, { recursive: true, force: true });
    }
  });

  test('while a pod runs, its token is in no process command line', async () => {
    const uuidFile = path.join(dd.path, 'uuid-running');
    const bg = startTspod(dd, ['run', '--mds-register', '--net=host', `--uuid-file-save=${uuidFile}`, BUSYBOX, '--exec=/bin/sh', '--', '-c', 'echo ready; exec sleep 3600'], { env });
    try {
      await bg.waitOutput(/^ready$/m);
      const uuid = fs.readFileSync(uuidFile, 'utf8').trim();
      const { token } = readJson(podFile(uuid, 'mds')) as { token: string };
      for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
        let cmdline = '';
        try {
          cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          continue;
        }
        assert.ok(!cmdline.includes(token), `pid ${pid}: ${cmdline}`);
      }
      await ok(dd, ['stop', uuid]);
    } finally {
      bg.proc.kill('SIGKILL');
      await bg.exited;
    }
  });
});

describe('where the service listens', { skip: SKIP }, () => {
  test('an IPv6 listen address (::1) serves too', async () => {
    const svcPort = await freePort();
    const bg = startTspod(dd, ['metadata-service', `--listen-port=${svcPort}`, '--listen-address=::1'], { env: { TSPOD_MDS_SOCKET: path.join(sockDir, 'v6.sock') } });
    try {
      await bg.waitOutput(new RegExp(`^metadata service listening on \\[::1\\]:${svcPort};`, 'm'), 'the service on ::1');
      const a = await get(`http://[::1]:${svcPort}/${Buffer.alloc(32, 9).toString('base64url')}/acMetadata/v1/pod/uuid`);
      assert.deepEqual([a.status, a.body], [403, 'Forbidden\n']);
    } finally {
      await stopService(bg);
    }
  });

  test('an address that appears after the service started (IP_FREEBIND) answers at once: a veth into a netns made by the test', async () => {
    const sh = (cmd: string[]) => {
      const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
      assert.equal(r.status, 0, `${cmd.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    const n = process.pid % 100000;
    const ns = `tspod-mds-${n}`;
    const host = `tmds${n}h`;
    const peer = `tmds${n}p`;
    const octet = 1 + (n % 250);
    const hostIp = `172.31.${octet}.1`;
    const podIp = `172.31.${octet}.2`;
    const token = Buffer.alloc(32, 7).toString('base64url');
    // The service listens on hostIp before any interface holds it.
    const svcPort = await freePort();
    const bg = startTspod(dd, ['metadata-service', `--listen-port=${svcPort}`, `--listen-address=${hostIp}`], { env: { TSPOD_MDS_SOCKET: path.join(sockDir, 'freebind.sock') } });
    const cleanup = () => {
      spawnSync('ip', ['link', 'del', host], { stdio: 'ignore' });
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    };
    const unregister = onExit(cleanup);
    try {
      await bg.waitOutput(/^metadata service listening on /m, 'the second service');
      assert.ok(!sh(['ip', '-o', 'addr', 'show']).includes(` ${hostIp}/`), `${hostIp} is not on the host yet`);
      sh(['ip', 'netns', 'add', ns]);
      sh(['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
      sh(['ip', 'link', 'set', peer, 'netns', ns]);
      sh(['ip', 'addr', 'add', `${hostIp}/30`, 'dev', host]);
      sh(['ip', 'link', 'set', host, 'up']);
      sh(['ip', '-n', ns, 'addr', 'add', `${podIp}/30`, 'dev', peer]);
      sh(['ip', '-n', ns, 'link', 'set', peer, 'up']);
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      // A token the second service does not know: 403 proves it answers there (and only that).
      // (the host's static busybox wget crashes in glibc's resolver: a node client in the netns)
      const client = `fetch(process.argv[1]).then(async (r) => console.log(r.status, await r.text()), (e) => console.log('failed', e.cause?.code ?? e.message))`;
      const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', client, `http://${hostIp}:${svcPort}/${token}/acMetadata/v1/pod/uuid`], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.stdout.trim(), '403 Forbidden', `${r.stdout}${r.stderr}`);
    } finally {
      await stopService(bg);
      cleanup();
      unregister();
    }
  });
});

describe('a pod on a private network', { skip: SKIP }, () => {
  for (const netName of ['default', 'default-restricted']) {
    test(`--net=${netName}: AC_METADATA_URL is the gateway of the pod's first network, where the service (listening there with IP_FREEBIND) answers`, async () => {
      const gateway = netName === 'default' ? '172.16.28.1' : '172.17.0.1';
      const svcPort = await freePort();
      const svcEnv = { TSPOD_MDS_SOCKET: path.join(sockDir, `${netName}.sock`) };
      // 127.0.0.1 and the network's host side, which exists only on the pod's veth.
      const bg = startTspod(dd, ['metadata-service', `--listen-port=${svcPort}`, '--listen-address=127.0.0.1', `--listen-address=${gateway}`], { env: svcEnv });
      try {
        await bg.waitOutput(/^metadata service listening on /m, 'the service');
        const uuidFile = path.join(dd.path, `uuid-${netName}`);
        const r = await ok(dd, ['run', '--mds-register', `--net=${netName}`, `--uuid-file-save=${uuidFile}`, BUSYBOX, '--name=netpod', '--exec=/bin/sh', '--', '-c', POD_SCRIPT], { env: svcEnv });
        const uuid = fs.readFileSync(uuidFile, 'utf8').trim();
        const out = new Map(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]));
        const networks = readJson(podFile(uuid, 'networks')) as Array<{ name: string; gateway: string }>;
        assert.equal(networks[0].name, netName);
        assert.equal(networks[0].gateway, gateway);
        assert.match(out.get('url') ?? '', new RegExp(`^http://${gateway.replace(/\./g, '\\.')}:${svcPort}/[A-Za-z0-9_-]{43}$`), r.stdout);
        assert.equal(out.get('uuid'), uuid, 'the pod read its UUID through its gateway');
        assert.equal(out.get('verify'), 'ok');
        assert.match(out.get('tampered') ?? '', /403 Forbidden/);
        await ok(dd, ['rm', uuid], { env: svcEnv });
      } finally {
        await stopService(bg);
      }
    });
  }
});

describe('who may register', { skip: SKIP }, () => {
  test('the registration socket is root-only: nobody cannot connect (a 0666 socket beside it is the control)', async () => {
    assert.equal(fs.statSync(sock).mode & 0o777, 0o600);
    assert.equal(fs.statSync(sock).uid, 0);
    const control = path.join(sockDir, 'control.sock');
    const server = net.createServer((c) => c.end());
    await new Promise<void>((resolve) => server.listen(control, resolve));
    fs.chmodSync(control, 0o666);
    try {
      const asNobody = async (file: string) => {
        const script = `import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect(sys.argv[1]); print("connected")\nexcept OSError as e:\n  print(type(e).__name__)`;
        const { spawn } = await import('node:child_process');
        return new Promise<string>((resolve) => {
          const p = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/python3', '-c', script, file], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          p.stdout.on('data', (c: Buffer) => (out += c.toString()));
          p.stderr.on('data', (c: Buffer) => (out += c.toString()));
          p.on('close', () => resolve(out.trim()));
        });
      };
      assert.equal(await asNobody(control), 'connected', 'the control: nobody can reach the directory');
      assert.equal(await asNobody(sock), 'PermissionError');
    } finally {
      server.close();
    }
    // tspod itself refuses an unprivileged user before anything else — when that
    // user can reach the checkout at all (CI's clone is in a 0700 mktemp dir).
    const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
    if (spawnSync('setpriv', [...nobody, 'test', '-x', TSPOD_BIN]).status === 0) {
      const r = spawnSync('setpriv', [...nobody, TSPOD_BIN, `--dir=${dd.path}`, 'run-prepared', '--mds-register', '00000000-0000-4000-8000-000000000000'], { encoding: 'utf8', env: { ...process.env, ...env } });
      assert.equal(r.status, 254, r.stderr);
    }
  });
});

describe('bad input', { skip: SKIP }, () => {
  const noService = () => ({ TSPOD_MDS_SOCKET: path.join(sockDir, 'absent.sock') });

  test('run --mds-register without a service: one line, 254, no pod left', async () => {
    const before = podsTree(dd.path);
    failsWith(await dd.tspod(['run', '--mds-register', '--net=host', BUSYBOX, '--exec=/bin/true'], { env: noService() }), /^--mds-register: no metadata service is running; start `tspod metadata-service`$/);
    assert.deepEqual(podsTree(dd.path), before);
  });

  test('run-prepared --mds-register without a service: one line, 254, the pod stays prepared', async () => {
    const uuid = (await ok(dd, ['prepare', '--quiet', BUSYBOX, '--exec=/bin/true'])).stdout.trim();
    failsWith(await dd.tspod(['run-prepared', '--mds-register', uuid], { env: noService() }), /^--mds-register: no metadata service is running/);
    assert.ok(fs.existsSync(path.join(dd.path, 'pods/prepared', uuid)));
    assert.ok(!fs.existsSync(path.join(dd.path, 'pods/prepared', uuid, 'mds')));
    await ok(dd, ['rm', uuid]);
  });

  test('--mds-register with --net=none, and on prepare: one line, 254, no pod', async () => {
    const before = podsTree(dd.path);
    failsWith(await dd.tspod(['run', '--mds-register', '--net=none', BUSYBOX, '--exec=/bin/true'], { env }), /^--mds-register: a pod with --net=none cannot reach the metadata service/);
    failsWith(await dd.tspod(['prepare', '--mds-register', BUSYBOX, '--exec=/bin/true'], { env }), /^--mds-register is a flag of run and run-prepared/);
    assert.deepEqual(podsTree(dd.path), before);
  });

  test('metadata-service: bad flags, a second service, a port in use: one line, 254', async () => {
    const bad = async (args: string[], re: RegExp, e = env) => failsWith(await dd.tspod(['metadata-service', ...args], { env: e }), re);
    await bad(['--listen-address=bogus'], /^--listen-address=bogus: not an IP address$/);
    await bad(['--listen-port=0'], /^--listen-port=0: want a port number from 1 to 65535$/);
    await bad([`--listen-port=${port}`, '--listen-address=127.0.0.1'], /^a metadata service is already running/);
    const other = { TSPOD_MDS_SOCKET: path.join(sockDir, 'other.sock') };
    await bad([`--listen-port=${port}`, '--listen-address=127.0.0.1'], new RegExp(`^metadata service: 127\\.0\\.0\\.1 port ${port} is already in use`), other);
    assert.ok(!fs.existsSync(other.TSPOD_MDS_SOCKET), 'no socket left by the failed start');
    // The running service is unharmed.
    await waitFor(() => fs.existsSync(sock), 'the socket');
  });
});

describe('dist', { skip: (SKIP || (!hasSystemd && 'systemd-analyze is missing')) as string | false }, () => {
  test('systemd-analyze verify accepts tspod-metadata.service (ExecStart pointed at bin/tspod)', () => {
    const dir = makeTempDir('dist-mds');
    try {
      const unit = fs.readFileSync(path.join(REPO_ROOT, 'dist/tspod-metadata.service'), 'utf8');
      assert.match(unit, /^ExecStart=\S*tspod metadata-service\b/m);
      fs.writeFileSync(path.join(dir, 'tspod-metadata.service'), unit.replace(/^ExecStart=\S+/gm, `ExecStart=${TSPOD_BIN}`));
      const r = spawnSync('systemd-analyze', ['verify', path.join(dir, 'tspod-metadata.service')], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
      assert.equal(r.stderr.trim(), '', 'no warnings');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
