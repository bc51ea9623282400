// Port forwards (issue 8 item 2): --port=NAME:[HOSTIP:]HOSTPORT and the pod
// manifest's `ports`, checked as rkt does at prepare (names, conflicts, --net),
// a host port already taken refused before the pod starts, and the pure rules
// of stage1/contract/ports.ts; tcp and udp forwards answering from a client
// netns and from the host's 127.0.0.1. Every server the tests start binds
// 127.0.0.1 or lives in a pod's network namespace.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fixture, listLinks, makeDataDir, onExit, REPO_ROOT, type DataDir } from './harness/index.js';
import { makeClientNetns, sh } from './net-util.js';
import { busyboxAci, failsWith, ok, podsTree, removeScratchDirs, scratchDir, SKIP, startTspod, stopAndWait, waitFor, type BackgroundPod } from './pods-util.js';
import {
  forwardedPorts,
  forwardingNetworkIndex,
  hostSockets,
  LOCALNET_GUARD,
  parsePortFlag,
  portInUseProblem,
  portmapForwards,
  portMappingsOn,
  type ExposedPort,
} from '../stage1/contract/ports.js';
import type { AppcApp } from '../stage1/contract/appc.js';
import type { PodManifest } from '../stage1/contract/pod.js';

const MULTI = fixture('multi').source;
const ANSWER = 'served-by-the-pod';

// ---------------------------------------------------------------- test-only host ports

/** A TCP listener on 127.0.0.1 (closed by closeServers). */
const servers: net.Server[] = [];
function listenLoopback(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer((c) => c.end());
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => {
      servers.push(s);
      resolve(s);
    });
  });
}
async function closeServers(): Promise<void> {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
}

/** A port of the test range 47000-47999 that nothing on the host uses now. */
let nextPort = 47000 + (process.pid % 100) * 10;
function freePort(): number {
  const used = new Set(hostSockets().map((s) => s.hostPort));
  for (let i = 0; i < 1000; i++) {
    const p = 47000 + ((nextPort++ - 47000) % 1000);
    if (!used.has(p)) return p;
  }
  throw new Error('no free port in 47000-47999');
}

// ---------------------------------------------------------------- the pure rules

const app = (ports: AppcApp['ports']): { app: AppcApp } => ({ app: { exec: ['/bin/true'], user: '0', group: '0', ports } });
const HTTP = { name: 'http', protocol: 'tcp', port: 80 };
const DNS = { name: 'dns', protocol: 'udp', port: 53 };

describe('the rules (stage1/contract/ports.ts)', () => {
  test('--port values: NAME:HOSTPORT and NAME:HOSTIP:HOSTPORT, anything else says why', () => {
    assert.deepEqual(parsePortFlag('http:8080'), { name: 'http', hostPort: 8080 });
    assert.deepEqual(parsePortFlag('80-tcp:127.0.0.1:8080'), { name: '80-tcp', hostPort: 8080, hostIP: '127.0.0.1' });
    const bad: Array<[string, RegExp]> = [
      ['http', /not in NAME:\[HOSTIP:\]HOSTPORT format/],
      ['http:1:2:3', /not in NAME:\[HOSTIP:\]HOSTPORT format/],
      ['Http:80', /"Http" is not a valid port name/],
      [':80', /"" is not a valid port name/],
      ['http:0', /"0" is not a valid port number/],
      ['http:65536', /"65536" is not a valid port number/],
      ['http:-1', /"-1" is not a valid port number/],
      ['http:80x', /"80x" is not a valid port number/],
      ['http:', /"" is not a valid port number/],
      ['http:1.2.3:80', /"1.2.3" is not a valid IPv4 address/],
      ['http:256.0.0.1:80', /"256.0.0.1" is not a valid IPv4 address/],
      ['http:localhost:80', /"localhost" is not a valid IPv4 address/],
    ];
    for (const [v, re] of bad) {
      const r = parsePortFlag(v);
      assert.equal(typeof r, 'string', v);
      assert.match(r as string, re, v);
    }
  });

  test('names resolve to exactly one app port; two forwards of one host port conflict as in rkt', () => {
    const apps = [app([HTTP, DNS])];
    const m = (ports: ExposedPort[]) => ({ ports });
    assert.deepEqual(forwardedPorts(m([{ name: 'http', hostPort: 8080 }, { name: 'dns', hostPort: 8080 }]), apps), [
      { name: 'http', protocol: 'tcp', hostIP: '0.0.0.0', hostPort: 8080, podPort: 80 },
      { name: 'dns', protocol: 'udp', hostIP: '0.0.0.0', hostPort: 8080, podPort: 53 },
    ]);
    assert.throws(() => forwardedPorts(m([{ name: 'nope', hostPort: 1 }]), apps), /^Error: port name "nope" could not be found in any apps$/);
    assert.throws(() => forwardedPorts(m([{ name: 'http', hostPort: 1 }]), [app([HTTP]), app([HTTP])]), /port name "http" defined multiple apps/);
    // same protocol and host port: 0.0.0.0 on either side, or the same address, conflict
    assert.throws(() => forwardedPorts(m([{ name: 'http', hostPort: 9 }, { name: 'http', hostPort: 9, hostIP: '127.0.0.1' }]), apps), /port tcp-127\.0\.0\.1:9 already mapped to pod port 80/);
    assert.throws(() => forwardedPorts(m([{ name: 'http', hostPort: 9, hostIP: '10.0.0.1' }, { name: 'http', hostPort: 9 }]), apps), /port tcp-0\.0\.0\.0:9 already mapped to pod port 80/);
    assert.throws(() => forwardedPorts(m([{ name: 'http', hostPort: 9, hostIP: '10.0.0.1' }, { name: 'http', hostPort: 9, hostIP: '10.0.0.1' }]), apps), /already mapped/);
    // distinct addresses do not
    assert.equal(forwardedPorts(m([{ name: 'http', hostPort: 9, hostIP: '10.0.0.1' }, { name: 'http', hostPort: 9, hostIP: '10.0.0.2' }]), apps).length, 2);
    // podPort names the pod side itself (no app needs the name)
    assert.deepEqual(forwardedPorts(m([{ name: 'raw', hostPort: 7, podPort: { name: 'raw', protocol: 'UDP', port: 70 } }]), apps), [
      { name: 'raw', protocol: 'udp', hostIP: '0.0.0.0', hostPort: 7, podPort: 70 },
    ]);
    assert.throws(() => forwardedPorts(m([{ name: 'x', hostPort: 7 }]), [app([{ name: 'x', protocol: 'sctp', port: 7 }])]), /protocol "sctp" cannot be forwarded/);
  });

  test('the forwards go through the first network with ipMasq, else the last', () => {
    assert.equal(forwardingNetworkIndex([{ ipMasq: false }, { ipMasq: true }, { ipMasq: true }]), 1);
    assert.equal(forwardingNetworkIndex([{ ipMasq: false }, { ipMasq: false }]), 1);
    const manifest = { acKind: 'PodManifest', acVersion: '0.8.11', apps: [{ name: 'a', image: { id: 'x' }, ...app([HTTP]) }], ports: [{ name: 'http', hostPort: 8080, hostIP: '127.0.0.1' }, { name: 'http', hostPort: 8081 }] } as PodManifest;
    const all = [{ name: 'default-restricted', ipMasq: false }, { name: 'default', ipMasq: true }];
    assert.deepEqual(portMappingsOn(manifest, manifest.apps, { ...all[0], index: 0, all }), []);
    assert.deepEqual(portMappingsOn(manifest, manifest.apps, { ...all[1], index: 1, all }), [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '127.0.0.1' },
      { hostPort: 8081, containerPort: 80, protocol: 'tcp' },
    ]);
    assert.deepEqual(portMappingsOn({ ...manifest, ports: [] }, manifest.apps, { ...all[1], index: 1, all }), []);
  });

  test('portmap rules of other containers (iptables-save as Debian portmap 1.1.1 writes them) and host sockets hold ports', () => {
    const saved = [
      '*nat',
      '-A CNI-DN-a9205074ba327bef17dd4 -s 10.199.77.0/24 -p tcp -m tcp --dport 47801 -j CNI-HOSTPORT-SETMARK',
      '-A CNI-DN-a9205074ba327bef17dd4 -p tcp -m tcp --dport 47801 -j DNAT --to-destination 10.199.77.2:80',
      '-A CNI-DN-a9205074ba327bef17dd4 -d 127.0.0.1/32 -p udp -m udp --dport 47802 -j DNAT --to-destination 10.199.77.2:81',
      '-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"default\\" id: \\"0b7f2a3c-1111-4222-8333-444455556666\\"" -m multiport --dports 47801,47802 -j CNI-DN-a9205074ba327bef17dd4',
      'COMMIT',
    ].join('\n');
    const uses = portmapForwards(() => saved);
    assert.deepEqual(uses, [
      { protocol: 'tcp', hostIP: '0.0.0.0', hostPort: 47801, by: '0b7f2a3c-1111-4222-8333-444455556666' },
      { protocol: 'udp', hostIP: '127.0.0.1', hostPort: 47802, by: '0b7f2a3c-1111-4222-8333-444455556666' },
    ]);
    const fwd = (protocol: 'tcp' | 'udp', hostIP: string, hostPort: number) => [{ name: 'p', protocol, hostIP, hostPort, podPort: 1 }];
    assert.match(portInUseProblem(fwd('tcp', '127.0.0.1', 47801), uses) ?? '', /^port tcp 127\.0\.0\.1:47801 \(--port=p\) is already forwarded to pod 0b7f2a3c-/);
    assert.equal(portInUseProblem(fwd('tcp', '127.0.0.1', 47802), uses), undefined, 'udp is another port');
    assert.equal(portInUseProblem(fwd('udp', '10.0.0.1', 47802), uses), undefined, 'another address');
  });

  test('a listening socket on 127.0.0.1 is seen (/proc/net/tcp)', { skip: SKIP }, async () => {
    const port = freePort();
    await listenLoopback(port);
    try {
      assert.ok(hostSockets().some((s) => s.protocol === 'tcp' && s.hostIP === '127.0.0.1' && s.hostPort === port));
    } finally {
      await closeServers();
    }
  });
});

// ---------------------------------------------------------------- prepare and run

let dd: DataDir;
let aci = '';
let aci2 = '';
let busyboxId = '';

before(async () => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'network-ports');
  const dir = scratchDir('ports-images');
  const ports = [HTTP, DNS];
  // A TCP server on port 80 that answers every connection with a line.
  aci = busyboxAci(dir, 'portsrv', { exec: ['/bin/busybox', 'nc', '-ll', '-p', '80', '-e', '/bin/echo', ANSWER], ports });
  aci2 = busyboxAci(dir, 'portsrv2', { exec: ['/bin/true'], ports: [HTTP] });
  await ok(dd, ['fetch', '--insecure-options=image', aci, aci2, MULTI]);
  const images = JSON.parse((await ok(dd, ['image', 'list', '--format=json'])).stdout) as Array<{ id: string; name: string }>;
  busyboxId = images.find((i) => i.name.includes('portsrv'))!.id;
});
after(async () => {
  await closeServers();
  removeScratchDirs();
  if (dd) await dd.remove();
});

function podManifestOf(uuid: string): PodManifest {
  return JSON.parse(fs.readFileSync(path.join(dd.path, 'pods', 'prepared', uuid, 'pod'), 'utf8')) as PodManifest;
}

async function prepared(args: string[]): Promise<string> {
  const r = await ok(dd, ['prepare', '--quiet', '--insecure-options=image', ...args]);
  return r.stdout.trim();
}

describe('--port at prepare', { skip: SKIP }, () => {
  test('fills the pod manifest\'s ports; a converted image\'s ports are named 80-tcp, 53-udp', async () => {
    const u = await prepared(['--port=http:127.0.0.1:47001', '--port=dns:47001', aci]);
    assert.deepEqual(podManifestOf(u).ports, [
      { name: 'http', hostPort: 47001, hostIP: '127.0.0.1' },
      { name: 'dns', hostPort: 47001 },
    ]);
    const vols = ['--volume=volume-data-vol,kind=empty', '--volume=volume-data-opaque,kind=empty'];
    const m = await prepared([...vols, '--port=80-tcp:47002', '--port=53-udp:127.0.0.1:47002', MULTI]);
    assert.deepEqual(podManifestOf(m).ports, [
      { name: '80-tcp', hostPort: 47002 },
      { name: '53-udp', hostPort: 47002, hostIP: '127.0.0.1' },
    ]);
    await ok(dd, ['rm', u, m]);
  });

  test('a --pod-manifest\'s ports are kept and checked the same way', async () => {
    const dir = scratchDir('ports-manifests');
    const write = (name: string, ports: unknown) => {
      const f = path.join(dir, `${name}.json`);
      fs.writeFileSync(f, JSON.stringify({ acKind: 'PodManifest', acVersion: '0.8.11', apps: [{ name: 'srv', image: { id: busyboxId } }], ports }));
      return f;
    };
    const good = [{ name: 'http', hostPort: 47003, hostIP: '127.0.0.1' }, { name: 'raw', hostPort: 47004, podPort: { name: 'raw', protocol: 'udp', port: 99 } }];
    const u = await prepared([`--pod-manifest=${write('good', good)}`]);
    assert.deepEqual(podManifestOf(u).ports, good);
    await ok(dd, ['rm', u]);
    const before = podsTree(dd.path);
    const cases: Array<[unknown, RegExp]> = [
      [[{ name: 'nope', hostPort: 47005 }], /^port name "nope" could not be found in any apps: /],
      [[{ name: 'http', hostPort: 47005 }, { name: 'http', hostPort: 47005, hostIP: '127.0.0.1' }], /^port tcp-127\.0\.0\.1:47005 already mapped to pod port 80: /],
      [[{ name: 'http', hostPort: 0 }], /: port http: hostPort must be a number from 1 to 65535$/],
      [[{ name: 'http', hostPort: '80' }], /: port http: hostPort must be a number from 1 to 65535$/],
      [[{ name: 'http', hostPort: 80, hostIP: '::1' }], /: port http: hostIP "::1" is not an IPv4 address$/],
      [[{ name: 'Bad', hostPort: 80 }], /: port name "Bad" is not an AC Name/],
      [{ name: 'http' }, /: ports must be a list$/],
      [[{ name: 'raw', hostPort: 80, podPort: { port: 0 } }], /: port raw: podPort must be/],
    ];
    for (const [i, [ports, line]] of cases.entries()) {
      failsWith(await dd.tspod(['prepare', `--pod-manifest=${write(`bad${i}`, ports)}`]), line);
    }
    failsWith(await dd.tspod(['run', `--pod-manifest=${write('good2', good)}`, '--port=http:47006']), /^conflicting flags set with --pod-manifest \(see --help\)$/);
    failsWith(await dd.tspod(['run', '--net=host', `--pod-manifest=${write('good3', good)}`]), /^--port flag does not work with 'host' networking: /);
    assert.deepEqual(podsTree(dd.path), before, 'no pod left');
  });

  test('bad input: one line, exit 254, no pod', async () => {
    const before = podsTree(dd.path);
    const exec = ['--exec=/bin/true'];
    const cases: Array<[string[], RegExp]> = [
      // malformed --port
      [['run', '--port=http', aci], /^--port "http" is not in NAME:\[HOSTIP:\]HOSTPORT format: e\.g\. --port=80-tcp:8080/],
      [['prepare', '--port=http:99999', aci], /^--port "99999" is not a valid port number \(1-65535\)/],
      [['run', '--port=http:1.2.3.4.5:80', aci], /^--port "1\.2\.3\.4\.5" is not a valid IPv4 address/],
      [['run', '--port=HTTP:80', aci], /^--port "HTTP" is not a valid port name/],
      // rkt's rules
      [['run', '--port=x:47010', aci], /^port name "x" could not be found in any apps: tspod image cat-manifest IMAGE lists an image's ports/],
      [['prepare', '--port=http:47010', aci, '--name=a', aci2, '--name=b'], /^port name "http" defined multiple apps/],
      [['run', '--port=http:47010', '--port=http:127.0.0.1:47010', aci], /^port tcp-127\.0\.0\.1:47010 already mapped to pod port 80: forward each host port once/],
      [['run', '--port=http:127.0.0.1:47010', '--port=http:47010', aci], /^port tcp-0\.0\.0\.0:47010 already mapped to pod port 80/],
      [['run', '--port=http:127.0.0.1:47010', '--port=http:127.0.0.1:47010', aci], /^port tcp-127\.0\.0\.1:47010 already mapped to pod port 80/],
      [['run', '--net=host', '--port=http:47010', aci, ...exec], /^--port flag does not work with 'host' networking: forwards need a network of the pod's own/],
      [['prepare', '--net=none', '--port=http:47010', aci, ...exec], /^--port flag does not work with 'none' networking/],
    ];
    for (const [args, line] of cases) failsWith(await dd.tspod(['--insecure-options=image', ...args]), line);
    assert.deepEqual(podsTree(dd.path), before, 'no pod left');
  });

  test('a host port already bound: run refuses before anything is made; run-prepared leaves the pod prepared', async () => {
    const port = freePort();
    const u = await prepared([`--port=http:${port}`, aci]);
    const u2 = await prepared([`--port=http:127.0.0.2:${port}`, aci]);
    await listenLoopback(port);
    try {
      const before = podsTree(dd.path);
      const taken = new RegExp(`^port tcp ${port} \\(--port=http\\) is already in use on the host \\(a listening socket on 127\\.0\\.0\\.1:${port}\\): `);
      failsWith(await dd.tspod(['run', '--insecure-options=image', `--port=http:${port}`, aci]), taken);
      failsWith(
        await dd.tspod(['run', '--insecure-options=image', `--port=http:127.0.0.1:${port}`, aci]),
        new RegExp(`^port tcp 127\\.0\\.0\\.1:${port} \\(--port=http\\) is already in use on the host`),
      );
      failsWith(await dd.tspod(['run-prepared', u]), taken);
      assert.deepEqual(podsTree(dd.path), before, 'nothing made, the prepared pod still prepared');
      // run-prepared checks the network it is given too
      failsWith(await dd.tspod(['run-prepared', '--net=none', u2]), /^--port flag does not work with 'none' networking/);
      assert.deepEqual(podsTree(dd.path), before);
    } finally {
      await closeServers();
      await dd.tspod(['rm', u, u2]);
    }
  });
});

// ---------------------------------------------------------------- the forwards (default network, Debian portmap)

// The test's other "host": a network namespace with a veth to the host, on a test subnet of this run.
const X = 100 + (process.pid % 100);
const CLIENT_NS = `tspod-test-np${process.pid}`;
const HOST_VETH = `tnp${process.pid % 100000}h`;
const HOST_IP = `10.241.${X}.1`;
const CLIENT_IP = `10.241.${X}.2`;
const restore: Array<() => void> = [];

/** What a TCP connection to HOST:PORT reads (busybox nc, from the client netns when `ns`), or undefined when it fails. */
function connect(host: string, port: number, ns?: string): string | undefined {
  const argv = [...(ns ? ['ip', 'netns', 'exec', ns] : []), 'busybox', 'nc', '-w', '3', host, String(port)];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', input: '', timeout: 15_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Waits until HOST:PORT answers with the pod's line. */
async function answers(host: string, port: number, ns?: string): Promise<void> {
  await waitFor(() => connect(host, port, ns) === ANSWER, `${ns ? `${ns} → ` : ''}${host}:${port} to answer`);
}

const UDP_ANSWER = 'udp-served-by-the-pod';
let udpAci: string | undefined;

/** An image whose app answers datagrams on udp port 53 (test/udp/udp-answer.c, built static), its port named dns. */
async function udpImage(): Promise<string> {
  if (udpAci) return udpAci;
  const dir = scratchDir('ports-udp');
  const bin = path.join(dir, 'udp-answer');
  const cc = spawnSync('gcc', ['-static', '-O2', '-o', bin, path.join(REPO_ROOT, 'test/udp/udp-answer.c')], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const file = busyboxAci(dir, 'udpsrv', { exec: ['/bin/udp-answer', '53', UDP_ANSWER], ports: [DNS] }, { add: (rootfs) => fs.copyFileSync(bin, path.join(rootfs, 'bin', 'udp-answer')) });
  await ok(dd, ['fetch', '--insecure-options=image', file]);
  udpAci = file;
  return file;
}

/** The answer to one datagram to HOST:PORT (python3, from the client netns when `ns`), or undefined when none comes in 2 s. */
function udpAsk(host: string, port: number, ns?: string): string | undefined {
  const py = `import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
print(s.recv(600).decode().strip())`;
  const argv = [...(ns ? ['ip', 'netns', 'exec', ns] : []), 'python3', '-c', py, host, String(port)];
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 15_000 });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The portmap DNAT chain of a pod's forwards (CNI's chain name: a hash of the network's name and the container id). */
function dnatChain(uuid: string, network = 'default'): string {
  return `CNI-DN-${crypto.createHash('sha512').update(network + uuid).digest('hex').slice(0, 21)}`;
}

/** portmap's rules for the pod: its DNAT chain, and the jumps naming it. */
function portmapRules(uuid: string): string[] {
  const saved = sh('iptables-save', ['-t', 'nat']);
  return saved.split('\n').filter((l) => l.includes(dnatChain(uuid)) || (l.includes('dnat name') && l.includes(uuid)));
}

interface ServerPod {
  bg: BackgroundPod;
  uuid: string;
}

/** `tspod run` of the server app with these flags (in the background); returns once its uuid is known. */
async function startServer(flags: string[], image = aci, appFlags: string[] = []): Promise<ServerPod> {
  const uuidFile = path.join(scratchDir('uuid'), 'u');
  const bg = startTspod(dd, ['run', '--insecure-options=image', `--uuid-file-save=${uuidFile}`, ...flags, image, ...appFlags]);
  const uuid = await waitFor(() => {
    if (bg.proc.exitCode !== null) throw new Error(`the server pod exited: ${bg.stderr()}`);
    return fs.existsSync(uuidFile) ? fs.readFileSync(uuidFile, 'utf8').trim() : undefined;
  }, 'the server pod\'s uuid');
  return { bg, uuid };
}

describe('forwards (the default network, Debian portmap)', { skip: SKIP }, () => {
  before(() => {
    if (!SKIP) makeClientNetns({ ns: CLIENT_NS, hostVeth: HOST_VETH, hostIp: HOST_IP, clientIp: CLIENT_IP }, restore);
  });
  after(async () => {
    try {
      if (dd) await dd.tspod(['gc', '--grace-period=0s']);
    } finally {
      for (const r of restore.splice(0).reverse()) r();
    }
  });

  test('a forward on every address answers from another host, from the host on 127.0.0.1 and on its own address; nothing listens on the host; the port is free again as soon as the pod exits', async () => {
    const port = freePort();
    const a = await startServer([`--port=http:${port}`]);
    try {
      await answers('127.0.0.1', port);
      assert.equal(connect(HOST_IP, port, CLIENT_NS), ANSWER, 'from the client netns (another host) to the host\'s address');
      assert.equal(connect(HOST_IP, port), ANSWER, 'from the host to its own address');
      assert.ok(!hostSockets().some((s) => s.hostPort === port), 'no socket on the host: the forward is DNAT only');
      assert.ok(portmapRules(a.uuid).length >= 2, portmapRules(a.uuid).join('\n'));
    } finally {
      await stopAndWait(dd, a.bg, a.uuid);
    }
    // released with the pod, before any gc: rules gone, the port free for the next pod at once
    assert.deepEqual(portmapRules(a.uuid), [], 'no portmap chain or rule left');
    assert.ok(!portmapForwards().some((f) => f.hostPort === port), 'no forward of the port left');
    assert.equal(connect('127.0.0.1', port), undefined, 'nothing answers any more');
    const b = await startServer([`--port=http:127.0.0.1:${port}`]);
    try {
      await answers('127.0.0.1', port);
      assert.equal(connect(HOST_IP, port, CLIENT_NS), undefined, 'a forward on 127.0.0.1 does not answer on other addresses');
    } finally {
      await stopAndWait(dd, b.bg, b.uuid);
    }
    assert.deepEqual(portmapRules(b.uuid), []);
  });

  test('a udp port: answers from another host (who is seen as itself) and from the host on 127.0.0.1; nothing listens on the host; free again as soon as the pod exits', async () => {
    const image = await udpImage();
    const port = freePort();
    const a = await startServer([`--port=dns:${port}`], image);
    try {
      const local = await waitFor(() => udpAsk('127.0.0.1', port), `udp 127.0.0.1:${port} to answer`);
      assert.match(local, new RegExp(`^${UDP_ANSWER} peer=172\\.16\\.28\\.1$`), 'from the host\'s 127.0.0.1, masqueraded to the pod\'s gateway');
      assert.equal(udpAsk(HOST_IP, port, CLIENT_NS), `${UDP_ANSWER} peer=${CLIENT_IP}`, 'from the client netns to the host\'s address');
      assert.ok(!hostSockets().some((s) => s.protocol === 'udp' && s.hostPort === port), 'no udp socket on the host: DNAT only');
      assert.ok(portmapRules(a.uuid).some((r) => / -p udp .*--dport /.test(r)), portmapRules(a.uuid).join('\n'));
    } finally {
      await stopAndWait(dd, a.bg, a.uuid);
    }
    assert.deepEqual(portmapRules(a.uuid), [], 'no portmap chain or rule left');
    assert.equal(udpAsk('127.0.0.1', port), undefined, 'nothing answers any more');
    const b = await startServer([`--port=dns:${port}`], image);
    try {
      assert.equal(await waitFor(() => udpAsk(HOST_IP, port, CLIENT_NS), 'the next pod on the same udp port'), `${UDP_ANSWER} peer=${CLIENT_IP}`);
    } finally {
      await stopAndWait(dd, b.bg, b.uuid);
    }
    assert.deepEqual(portmapRules(b.uuid), []);
  });

  test('a converted image\'s 80-tcp forwarded on the host\'s address: the client reaches it; two forwards of one port on distinct addresses both answer', async () => {
    const port = freePort();
    const vols = ['--volume=volume-data-vol,kind=empty', '--volume=volume-data-opaque,kind=empty'];
    const a = await startServer([...vols, `--port=80-tcp:${HOST_IP}:${port}`, `--port=80-tcp:127.0.0.1:${port}`], MULTI, [
      '--user=0',
      '--exec=/bin/busybox',
      '--',
      'nc',
      '-ll',
      '-p',
      '80',
      '-e',
      '/bin/echo',
      ANSWER,
      '---',
    ]);
    try {
      await answers(HOST_IP, port, CLIENT_NS);
      assert.equal(connect(HOST_IP, port), ANSWER, 'from the host to that address');
      assert.equal(connect('127.0.0.1', port), ANSWER, 'from the host on 127.0.0.1');
    } finally {
      await stopAndWait(dd, a.bg, a.uuid);
    }
    assert.deepEqual(portmapRules(a.uuid), []);
  });

  test('a --pod-manifest\'s port with podPort, through prepare and run-prepared', async () => {
    const port = freePort();
    const file = path.join(scratchDir('ports-podport'), 'pod.json');
    const ports = [{ name: 'raw', hostPort: port, hostIP: '127.0.0.1', podPort: { name: 'raw', protocol: 'tcp', port: 80 } }];
    fs.writeFileSync(file, JSON.stringify({ acKind: 'PodManifest', acVersion: '0.8.11', apps: [{ name: 'srv', image: { id: busyboxId } }], ports }));
    const u = await prepared([`--pod-manifest=${file}`]);
    const bg = startTspod(dd, ['run-prepared', u]);
    try {
      await answers('127.0.0.1', port);
    } finally {
      await stopAndWait(dd, bg, u);
    }
    assert.deepEqual(portmapRules(u), []);
  });

  test('a port another pod forwards: run refuses (one line, 254, nothing made); run-prepared leaves the pod prepared', async () => {
    const port = freePort();
    const a = await startServer([`--port=http:127.0.0.1:${port}`]);
    try {
      await answers('127.0.0.1', port);
      const u = await prepared([`--port=http:${port}`, aci]);
      const before = { pods: podsTree(dd.path), links: listLinks(), rules: sh('iptables-save', ['-t', 'nat']) };
      const taken = new RegExp(`^port tcp ${port} \\(--port=http\\) is already forwarded to pod ${a.uuid}: `);
      failsWith(await dd.tspod(['run', '--insecure-options=image', `--port=http:${port}`, aci]), taken);
      failsWith(await dd.tspod(['run-prepared', u]), taken);
      assert.deepEqual(podsTree(dd.path), before.pods, 'no new pod; the prepared one still prepared');
      assert.deepEqual(listLinks(), before.links, 'no veth');
      assert.equal(sh('iptables-save', ['-t', 'nat']).replace(/^[#:].*\n/gm, ''), before.rules.replace(/^[#:].*\n/gm, ''), 'no rule');
      assert.equal(connect('127.0.0.1', port), ANSWER, 'the first pod still answers');
      await ok(dd, ['rm', u]);
    } finally {
      await stopAndWait(dd, a.bg, a.uuid);
    }
  });

  test('a pod with a forward does not reach the host\'s loopback services: route_localnet is on its veth, and tspod\'s guard drops what it sends to 127/8', async () => {
    // The host's loopback-only service: a process of its own (spawnSync below blocks this one's event loop).
    const secretPort = freePort();
    const py = `import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.2", ${secretPort})); s.listen(16)
print("listening", flush=True)
while True:
    c,a=s.accept(); c.sendall(b"host-secret\\n"); c.close()`;
    const secret = spawn('python3', ['-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
    const unregister = onExit(() => secret.kill('SIGKILL'));
    await waitFor(() => secret.stdout?.read()?.toString().includes('listening'), 'the host service');
    const port = freePort();
    const a = await startServer([`--port=http:127.0.0.1:${port}`]);
    try {
      await answers('127.0.0.1', port);
      const podDir = path.join(dd.path, 'pods', 'run', a.uuid);
      const [eth0] = JSON.parse(fs.readFileSync(path.join(podDir, 'networks'), 'utf8')) as Array<{ gateway: string; hostIfName: string }>;
      assert.equal(fs.readFileSync(`/proc/sys/net/ipv4/conf/${eth0.hostIfName}/route_localnet`, 'utf8').trim(), '1', 'portmap set route_localnet on the pod\'s veth');
      // The hostile pod (root with CAP_NET_ADMIN in its netns here; with the default CAP_NET_RAW a pod can send and
      // read the same packets raw): 127.0.0.2 through its gateway, and answers from 127/8 accepted on its eth0.
      const ns = `--net=${path.join(podDir, 'netns')}`;
      sh('nsenter', [ns, 'sh', '-c', `ip route del local 127.0.0.0/8 dev lo table local && ip route add 127.0.0.2/32 via ${eth0.gateway} dev eth0 && cd /proc/sys/net/ipv4/conf && echo 1 >eth0/route_localnet && echo 0 >eth0/rp_filter && echo 0 >all/rp_filter`]);
      const attack = () => spawnSync('nsenter', [ns, 'busybox', 'nc', '-w', '3', '127.0.0.2', String(secretPort)], { encoding: 'utf8', input: '', timeout: 15_000 }).stdout;
      assert.doesNotMatch(attack(), /host-secret/, 'the host\'s loopback service is out of reach');
      // control: without the guard the same packets get there
      sh('iptables', ['-w', '-t', 'filter', '-D', ...LOCALNET_GUARD]);
      try {
        assert.match(attack(), /host-secret/, 'without the guard the pod reaches it');
      } finally {
        sh('iptables', ['-w', '-t', 'filter', '-I', ...LOCALNET_GUARD]);
      }
      assert.equal(connect('127.0.0.1', port), ANSWER, 'the forward from 127.0.0.1 works with the guard');
    } finally {
      await stopAndWait(dd, a.bg, a.uuid);
      secret.kill('SIGKILL');
      unregister();
    }
  });

  test('two pods started at once with one host port: exactly one gets it (the host-wide ports lock), the other fails with one line', async () => {
    const port = freePort();
    const pods = [0, 1].map(() => {
      const uuidFile = path.join(scratchDir('uuid'), 'u');
      return { uuidFile, bg: startTspod(dd, ['run', '--insecure-options=image', `--uuid-file-save=${uuidFile}`, `--port=http:127.0.0.1:${port}`, aci]) };
    });
    try {
      const loser = await waitFor(() => pods.find((p) => p.bg.proc.exitCode !== null), 'one of the two pods to fail');
      const winner = pods.find((p) => p !== loser)!;
      const r = await loser.bg.exited;
      failsWith(r, new RegExp(`^(tspod stage1: )?port tcp 127\\.0\\.0\\.1:${port} \\(--port=http\\) is already forwarded to pod `));
      await answers('127.0.0.1', port);
      assert.equal(winner.bg.proc.exitCode, null, 'the other one runs');
      if (fs.existsSync(loser.uuidFile)) assert.deepEqual(portmapRules(fs.readFileSync(loser.uuidFile, 'utf8').trim()), [], 'no rule of the one that failed');
    } finally {
      for (const p of pods) {
        const uuid = fs.existsSync(p.uuidFile) ? fs.readFileSync(p.uuidFile, 'utf8').trim() : undefined;
        await stopAndWait(dd, p.bg, uuid);
      }
    }
  });

  test('a network that carries the forwards without a portmap plugin: stage1 refuses it, one line, 254, no veth or rule', async () => {
    const conf = scratchDir('ports-conf');
    fs.mkdirSync(path.join(conf, 'net.d'));
    const name = `tsnp${process.pid}`;
    fs.writeFileSync(path.join(conf, 'net.d', '10-np.conflist'), JSON.stringify({ cniVersion: '1.0.0', name, plugins: [{ type: 'ptp', ipam: { type: 'host-local', subnet: `10.242.${X}.0/24` } }] }));
    const links = listLinks();
    const rules = sh('iptables-save', ['-t', 'nat']).replace(/^[#:].*\n/gm, '');
    failsWith(
      await dd.tspod(['run', '--insecure-options=image', `--local-config=${conf}`, `--net=${name}`, `--port=http:127.0.0.1:${freePort()}`, aci]),
      new RegExp(`^tspod stage1: network ${name} \\(.*10-np\\.conflist\\) carries the pod's --port forwards but has no portmap plugin with the portMappings capability$`),
    );
    assert.deepEqual(listLinks(), links, 'no veth');
    assert.equal(sh('iptables-save', ['-t', 'nat']).replace(/^[#:].*\n/gm, ''), rules, 'no rule');
  });

  test('the helper SIGKILLed: its forward holds the port until tspod gc, then no portmap chain or rule is left and the port is free', async () => {
    const port = freePort();
    const a = await startServer([`--port=http:127.0.0.1:${port}`]);
    await answers('127.0.0.1', port);
    a.bg.proc.kill('SIGKILL');
    assert.equal((await a.bg.exited).code, 137);
    assert.ok(portmapRules(a.uuid).length >= 2, 'the killed pod\'s rules are still there');
    failsWith(await dd.tspod(['run', '--insecure-options=image', `--port=http:127.0.0.1:${port}`, aci]), new RegExp(`is already forwarded to pod ${a.uuid}`));
    await ok(dd, ['gc', '--grace-period=0s']);
    assert.deepEqual(portmapRules(a.uuid), [], 'gc removed the chain and its jump');
    assert.ok(!portmapForwards().some((f) => f.hostPort === port));
    const b = await startServer([`--port=http:127.0.0.1:${port}`]);
    try {
      await answers('127.0.0.1', port);
    } finally {
      await stopAndWait(dd, b.bg, b.uuid);
    }
  });
});
