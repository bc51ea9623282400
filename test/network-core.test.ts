// Pod networking through CNI (issue 8 items 1, 4 and the release parts of 2):
// the generated default and default-restricted networks and named networks from
// --local-config's net.d, with the host's Debian plugins and real iptables rules.
// The test makes a client network namespace (a veth to the host, a test subnet,
// a server in it) to stand for another host. It checks the pod's interfaces and
// routes through run and enter, reaching the host side and (masqueraded) the
// client, default-restricted not reaching it, two pods reaching each other, two
// networks in one pod, status/list/JSON, the release at exit (an address taken
// again at once) and at gc after a SIGKILL (no rule, veth, lease or netns mount
// left), the default network's host-wide masquerade (kept while a lease of the
// network exists, removed by gc when none does; the same rules of a test-only
// network driven directly), a refused start's pod (garbage after run, prepared
// again after run-prepared), and bad input (one line, 254, nothing left). Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describeResult, makeDataDir, type DataDir } from './harness/index.js';
import { listRules } from './harness/sys.js';
import { makeClientNetns, sh } from './net-util.js';
import { holdHostMasquerade, masqueradeComment, releaseUnusedMasquerade, USERS_LOCK, type HostMasquerade } from '../stage1/contract/masquerade.js';
import { BUSYBOX, failsWith, ok, podsTree, removeScratchDirs, scratchDir, SKIP, startTspod, stopAndWait, waitFor, type BackgroundPod } from './pods-util.js';

const LEASES = '/var/lib/cni/networks';
// A test subnet per run (the client namespace and the named networks), unlikely to clash with another run's.
const X = 100 + (process.pid % 100);
const CLIENT_NS = `tspod-test-nc${process.pid}`;
const HOST_VETH = `tnc${process.pid % 100000}h`;
const CLIENT_IP = `10.231.${X}.2`;
const HOST_IP = `10.231.${X}.1`;
const PORT = 18080;
const NET_NAME = `tsnet${process.pid}`;
const TINY_NAME = `tstiny${process.pid}`;

let dd: DataDir;
let confDir: string;
let server: ChildProcess | undefined;
const restore: Array<() => void> = [];

function writeConf(name: string, text: string): void {
  fs.writeFileSync(path.join(confDir, 'net.d', name), text);
}

/** The test's client "host": a network namespace with a veth to the host and a server that answers with the peer's address. */
function startClient(): void {
  makeClientNetns({ ns: CLIENT_NS, hostVeth: HOST_VETH, hostIp: HOST_IP, clientIp: CLIENT_IP }, restore);
  // The client knows only its /30: replies reach a pod only through the host's masquerade.
  const py = `import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("${CLIENT_IP}", ${PORT})); s.listen(16)
print("listening", flush=True)
while True:
    c,a=s.accept(); c.sendall(("peer=%s\\n" % a[0]).encode()); c.close()`;
  server = spawn('ip', ['netns', 'exec', CLIENT_NS, 'python3', '-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
  restore.push(() => server?.kill('SIGKILL'));
}

before(async () => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'network-core');
  confDir = scratchDir('network-core-conf');
  fs.mkdirSync(path.join(confDir, 'net.d'), { recursive: true });
  writeConf(
    '10-tsnet.conflist',
    JSON.stringify({ cniVersion: '0.4.0', name: NET_NAME, plugins: [{ type: 'ptp', ipMasq: false, ipam: { type: 'host-local', subnet: `10.232.${X}.0/24` } }] }),
  );
  // One address (.2; .1 is the gateway): exhausted by one pod.
  writeConf('20-tiny.conf', JSON.stringify({ cniVersion: '1.0.0', name: TINY_NAME, type: 'ptp', ipam: { type: 'host-local', ranges: [[{ subnet: `10.233.${X}.0/30` }]] } }));
  startClient();
  await waitFor(() => server?.stdout?.read()?.toString().includes('listening'), 'the client server');
});

after(async () => {
  try {
    if (dd) {
      await dd.tspod(['gc', '--grace-period=0s']);
      await dd.remove();
    }
  } finally {
    for (const r of restore.reverse()) r();
    removeScratchDirs();
    // host-local's state of the test's own networks (no lease is left by then: the tests check that).
    for (const n of [NET_NAME, TINY_NAME]) fs.rmSync(path.join(LEASES, n), { recursive: true, force: true });
  }
});

/** `key=value` lines of `tspod status`. */
async function status(uuid: string): Promise<Map<string, string>> {
  const out = (await ok(dd, ['status', uuid])).stdout;
  return new Map(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

interface RunningPod {
  pod: BackgroundPod;
  uuid: string;
  ip4: string;
  hostIfName: string;
}

/** Starts a pod whose app runs `script` (after the network is up); returns once its networks show in status. */
async function startPod(podFlags: string[], script: string, name: string): Promise<RunningPod> {
  const uuidFile = path.join(scratchDir(`uuid-${name}`), 'uuid');
  const pod = startTspod(dd, ['run', `--local-config=${confDir}`, `--uuid-file-save=${uuidFile}`, ...podFlags, BUSYBOX, '--exec=/bin/sh', '--', '-c', script]);
  const uuid = await waitFor(() => (fs.existsSync(uuidFile) ? fs.readFileSync(uuidFile, 'utf8').trim() : undefined), `${name}'s uuid`);
  const nets = await waitFor(async () => {
    if (pod.proc.exitCode !== null) throw new Error(`${name} exited: ${pod.stderr()}`);
    const j = JSON.parse((await ok(dd, ['status', '--format=json', uuid])).stdout) as { state: string; networks: Array<{ ip: string }> };
    return j.state === 'running' && j.networks.length ? j.networks : undefined;
  }, `${name}'s networks`);
  const file = JSON.parse(fs.readFileSync(path.join(dd.path, 'pods/run', uuid, 'networks'), 'utf8')) as Array<{ hostIfName: string }>;
  return { pod, uuid, ip4: nets[0].ip, hostIfName: file[0].hostIfName };
}

/**
 * Everything a pod's network leaves on the host: rules naming it (their comments
 * carry the pod's id), IPAM leases (host-local writes the id into each), its
 * netns mount, and its host-side veth when known. Other test runs may have pods
 * of their own at the same time: only this pod's count.
 */
function leftovers(uuid: string, hostIfName?: string): string[] {
  const out: string[] = [];
  for (const r of listRules()) if (r.includes(uuid)) out.push(`rule ${r}`);
  if (hostIfName && fs.existsSync(`/sys/class/net/${hostIfName}`)) out.push(`veth ${hostIfName}`);
  for (const net of fs.existsSync(LEASES) ? fs.readdirSync(LEASES) : []) {
    for (const f of fs.readdirSync(path.join(LEASES, net))) {
      const file = path.join(LEASES, net, f);
      try {
        if (fs.statSync(file).isFile() && fs.readFileSync(file, 'utf8').includes(uuid)) out.push(`lease ${net}/${f}`);
      } catch {
        /* released meanwhile */
      }
    }
  }
  for (const l of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (l.includes(uuid) && l.includes('nsfs')) out.push(`mount ${l}`);
  return out;
}

describe('the default network', { skip: SKIP }, () => {
  test('eth0 in 172.16.28.0/24 with a default route, through run and enter; the host side and the client (masqueraded) are reached; the address is released at exit', async () => {
    const script = `ip -4 addr show eth0; ip route; ping -c1 -W5 172.16.28.1 >/dev/null && echo host-ok; nc -w 5 ${CLIENT_IP} ${PORT} </dev/null; echo ready; sleep 3600`;
    const p = await startPod([], script, 'default');
    try {
      const out = (await p.pod.waitOutput(/ready/, 'the app')).input;
      assert.match(out, new RegExp(`inet ${p.ip4.replace(/\./g, '\\.')}/24 .*eth0`), out);
      assert.match(p.ip4, /^172\.16\.28\.\d+$/);
      assert.match(out, /^default via 172\.16\.28\.1 dev eth0/m, out);
      assert.match(out, /host-ok/, `the host side answers\n${out}`);
      assert.match(out, new RegExp(`peer=${HOST_IP.replace(/\./g, '\\.')}`), `the client saw the host's address (masquerade)\n${out}`);
      const entered = await ok(dd, ['enter', p.uuid, '/bin/sh', '-c', 'ip -4 addr show eth0; ip route']);
      assert.match(entered.stdout, new RegExp(`inet ${p.ip4.replace(/\./g, '\\.')}/24`), 'enter sees the same interface');
      assert.match(entered.stdout, /^default via 172\.16\.28\.1/m);
      const st = await status(p.uuid);
      assert.equal(st.get('networks'), `default:ip4=${p.ip4}`);
      const list = (await ok(dd, ['list', '--no-legend', '--full'])).stdout;
      assert.match(list.split('\n').find((l) => l.startsWith(p.uuid)) ?? '', new RegExp(`\\tdefault:ip4=${p.ip4.replace(/\./g, '\\.')}$`), list);
      const j = JSON.parse((await ok(dd, ['status', '--format=json', p.uuid])).stdout) as { networks: unknown };
      assert.deepEqual(j.networks, [{ netName: 'default', netConf: '', pluginPath: '/usr/lib/cni/ptp', ifName: 'eth0', ip: p.ip4, args: '', mask: '////AA==' }]);
      assert.ok(leftovers(p.uuid, p.hostIfName).length >= 3, 'while it runs: its rules, veth, lease and netns mount');
    } finally {
      await stopAndWait(dd, p.pod, p.uuid);
    }
    assert.deepEqual(leftovers(p.uuid, p.hostIfName), [], 'released when the pod exited, before gc');
    assert.equal((await status(p.uuid)).get('networks'), `default:ip4=${p.ip4}`, 'an exited pod still shows what it had');
  });

  test('default-restricted: no default route, the host side only; the client is not reached', async () => {
    const r = await dd.tspod(['run', '--net=default-restricted', BUSYBOX, '--exec=/bin/sh', '--', '-c', `ip -4 addr show eth0; ip route; ping -c1 -W5 172.17.0.1 >/dev/null && echo host-ok; nc -w 3 ${CLIENT_IP} ${PORT} </dev/null || echo client-unreachable`]);
    assert.equal(r.code, 0, describeResult(r));
    assert.match(r.stdout, /inet 172\.17\.\d+\.\d+\/16 .*eth0/);
    assert.doesNotMatch(r.stdout, /^default/m, 'no default route');
    assert.match(r.stdout, /host-ok/);
    assert.match(r.stdout, /client-unreachable/);
    assert.doesNotMatch(r.stdout, /peer=/);
  });

  test('two pods get different addresses and reach each other', async () => {
    const a = await startPod([], 'echo listening; nc -l -p 7777; echo done', 'listener');
    try {
      await a.pod.waitOutput(/listening/);
      const r = await dd.tspod(['run', BUSYBOX, '--exec=/bin/sh', '--', '-c', `ip -4 addr show eth0; echo hello-from-b | nc -w 5 ${a.ip4} 7777`]);
      assert.equal(r.code, 0, describeResult(r));
      const b = /inet (172\.16\.28\.\d+)\//.exec(r.stdout)?.[1];
      assert.ok(b && b !== a.ip4, `two addresses: ${a.ip4} and ${b}`);
      await a.pod.waitOutput(/hello-from-b[\s\S]*done/, 'the message from the other pod');
      assert.equal((await a.pod.exited).code, 0);
    } finally {
      await stopAndWait(dd, a.pod, a.uuid);
    }
  });
});

describe('named networks (--local-config)', { skip: SKIP }, () => {
  test('--net=default,NAME: eth0 and eth1, both in status', async () => {
    const uuidFile = path.join(scratchDir('two'), 'u');
    const r = await dd.tspod(['run', `--local-config=${confDir}`, `--net=default,${NET_NAME}`, `--uuid-file-save=${uuidFile}`, BUSYBOX, '--exec=/bin/sh', '--', '-c', 'ip -4 addr']);
    assert.equal(r.code, 0, describeResult(r));
    assert.match(r.stdout, /inet 172\.16\.28\.\d+\/24 .*eth0/);
    assert.match(r.stdout, new RegExp(`inet 10\\.232\\.${X}\\.\\d+/24 .*eth1`));
    const uuid = fs.readFileSync(uuidFile, 'utf8').trim();
    assert.match((await status(uuid)).get('networks') ?? '', new RegExp(`^default:ip4=172\\.16\\.28\\.\\d+,${NET_NAME}:ip4=10\\.232\\.${X}\\.\\d+$`));
  });

  test('an address is free again as soon as its pod exits; an exhausted range fails (one line, 254, nothing left)', async () => {
    const net = [`--local-config=${confDir}`, `--net=${TINY_NAME}`];
    for (let i = 0; i < 2; i++) {
      const r = await dd.tspod(['run', ...net, BUSYBOX, '--exec=/bin/sh', '--', '-c', 'ip -4 addr show eth0']);
      assert.equal(r.code, 0, `the one address, taken again at once (${i})\n${describeResult(r)}`);
      assert.match(r.stdout, new RegExp(`inet 10\\.233\\.${X}\\.2/30`));
    }
    const holder = await startPod(net, 'echo up; sleep 3600', 'holder');
    try {
      const uuidFile = path.join(scratchDir('exhausted'), 'u');
      const r = await dd.tspod(['run', ...net, `--uuid-file-save=${uuidFile}`, BUSYBOX, '--exec=/bin/true']);
      failsWith(r, new RegExp(`network ${TINY_NAME} .*20-tiny\\.conf.*: plugin ptp: .*no IP addresses available`));
      assert.deepEqual(leftovers(fs.readFileSync(uuidFile, 'utf8').trim()), [], 'nothing of the failed pod');
      const leases = fs.readdirSync(path.join(LEASES, TINY_NAME)).filter((f) => /^\d/.test(f));
      assert.deepEqual(leases, [`10.233.${X}.2`], 'the holder’s lease only');
    } finally {
      await stopAndWait(dd, holder.pod, holder.uuid);
    }
  });
});

describe('release after SIGKILL: tspod gc', { skip: SKIP }, () => {
  test('the helper SIGKILLed: the rules, veth, lease and netns mount stay until gc, then none is left', async () => {
    const p = await startPod([], 'echo up; sleep 3600', 'killed');
    await p.pod.waitOutput(/up/);
    p.pod.proc.kill('SIGKILL');
    const r = await p.pod.exited;
    assert.equal(r.code, 137);
    await waitFor(async () => (await status(p.uuid)).get('state') === 'exited', 'the pod to be exited');
    const left = leftovers(p.uuid, p.hostIfName);
    assert.ok(left.some((l) => l.startsWith('lease')) && left.some((l) => l.startsWith('veth')) && left.some((l) => l.startsWith('mount')), `before gc:\n${left.join('\n')}`);
    await ok(dd, ['gc', '--grace-period=0s']);
    assert.deepEqual(leftovers(p.uuid, p.hostIfName), [], 'gc released everything');
  });
});

/**
 * The default network's masquerade rules (host-wide, not per pod) and whether a
 * pod of any test run holds an address in the network, read together under the
 * lock tspod gc takes to remove them (so no pod is between its check and its lease).
 */
function masqueradeState(): { rules: string[]; inUse: boolean } {
  const r = spawnSync('flock', [USERS_LOCK, 'sh', '-c', `ls ${LEASES}/default 2>/dev/null | grep -c '^[0-9]'; iptables-save -t nat | grep -e 'tspod: masquerade network default' -e '^:TSPOD-MASQ-DEFAULT '`], { encoding: 'utf8' });
  const [count, ...rules] = r.stdout.split('\n').filter(Boolean);
  return { inUse: Number(count) > 0, rules };
}

describe("the default network's masquerade: host-wide rules, removed by gc", { skip: SKIP }, () => {
  test('one set of rules for 172.16.28.0/24 while a pod runs, none of its own; gc keeps them while the pod runs and removes them when no pod uses the network', async (t) => {
    const p = await startPod([], 'echo up; sleep 3600', 'masq');
    try {
      await p.pod.waitOutput(/up/);
      const on = masqueradeState();
      assert.ok(on.inUse, 'the pod holds a lease');
      assert.equal(on.rules.filter((r) => r.startsWith('-A POSTROUTING -s 172.16.28.0/24 ') && r.endsWith('-j TSPOD-MASQ-DEFAULT')).length, 1, on.rules.join('\n'));
      assert.ok(on.rules.some((r) => /^-A TSPOD-MASQ-DEFAULT ! -d 224\.0\.0\.0\/4 .* -j MASQUERADE$/.test(r)), on.rules.join('\n'));
      assert.deepEqual(listRules().filter((r) => r.includes(p.uuid)), [], 'no rule of its own (no --port)');
      await ok(dd, ['gc', '--grace-period=0s']);
      assert.deepEqual(masqueradeState().rules, on.rules, 'gc keeps them while a pod uses the network');
    } finally {
      await stopAndWait(dd, p.pod, p.uuid);
    }
    await ok(dd, ['gc', '--grace-period=0s']);
    const off = masqueradeState();
    if (off.inUse) {
      // A pod of another test file (CI runs files in parallel) has an address: the rules must stay.
      assert.ok(off.rules.length > 0, 'kept for the other pod');
      t.diagnostic('another pod uses the default network: removal not observable in this run');
    } else {
      assert.deepEqual(off.rules, [], 'gc removed the chain and the jump');
    }
  });
});

describe('the host-wide masquerade rules by themselves (stage1/contract/masquerade.ts, real iptables)', { skip: SKIP }, () => {
  // A network of this test only: whatever pods of other runs hold in `default`, its rules come and go as the leases say.
  const m: HostMasquerade = { network: `tsmasq${process.pid}`, subnet: `10.243.${X}.0/24`, chain: `TSPOD-MASQ-T${process.pid}` };
  const rules = () => sh('iptables-save', ['-t', 'nat']).split('\n').filter((l) => l.includes(m.chain));
  after(() => {
    fs.rmSync(path.join(LEASES, m.network), { recursive: true, force: true });
    releaseUnusedMasquerade(m);
  });

  test('installed once however many pods hold it; kept while a lease of the network exists; removed (jump and chain) when none does', async () => {
    // Two pods at once, then a third: one install (the others find the rules).
    const holds = [holdHostMasquerade(m), holdHostMasquerade(m)];
    await Promise.all(holds.map((h) => h.ready));
    for (const h of holds) h.release();
    const third = holdHostMasquerade(m);
    await third.ready;
    third.release();
    const on = rules();
    assert.deepEqual(on.filter((r) => r.startsWith('-A POSTROUTING')), [`-A POSTROUTING -s ${m.subnet} -m comment --comment "${masqueradeComment(m)}" -j ${m.chain}`], 'one jump');
    assert.deepEqual(on.filter((r) => r.startsWith(`-A ${m.chain}`)).map((r) => r.replace(/ -m comment --comment "[^"]*"/, '')), [`-A ${m.chain} -d ${m.subnet} -j ACCEPT`, `-A ${m.chain} ! -d 224.0.0.0/4 -j MASQUERADE`]);
    fs.mkdirSync(path.join(LEASES, m.network), { recursive: true });
    fs.writeFileSync(path.join(LEASES, m.network, `10.243.${X}.2`), 'a-pod\neth0');
    fs.writeFileSync(path.join(LEASES, m.network, 'last_reserved_ip.0'), `10.243.${X}.2`);
    fs.writeFileSync(path.join(LEASES, m.network, 'lock'), '');
    assert.deepEqual(releaseUnusedMasquerade(m), []);
    assert.deepEqual(rules(), on, 'kept while a pod holds an address');
    fs.rmSync(path.join(LEASES, m.network, `10.243.${X}.2`));
    assert.deepEqual(releaseUnusedMasquerade(m), []);
    assert.deepEqual(rules(), [], 'removed when only host-local\'s own files are left: no jump, no chain');
    assert.deepEqual(releaseUnusedMasquerade(m), [], 'removing again is fine');
  });
});

describe('bad input: one line, exit 254, nothing left', { skip: SKIP }, () => {
  test('unknown network, malformed or unreadable config, missing plugin: refused before a pod exists', async () => {
    const bad = scratchDir('bad-conf');
    fs.mkdirSync(path.join(bad, 'net.d'), { recursive: true });
    const before = podsTree(dd.path);
    failsWith(await dd.tspod(['run', `--local-config=${confDir}`, '--net=nosuch', BUSYBOX, '--exec=/bin/true']), /^--net=nosuch: unknown network "nosuch"/);
    fs.writeFileSync(path.join(bad, 'net.d', 'broken.conflist'), '{"name": "x", ');
    failsWith(await dd.tspod(['run', `--local-config=${bad}`, '--net=x', BUSYBOX, '--exec=/bin/true']), /broken\.conflist: not valid JSON/);
    fs.rmSync(path.join(bad, 'net.d', 'broken.conflist'));
    fs.mkdirSync(path.join(bad, 'net.d', 'dir.conf'));
    failsWith(await dd.tspod(['run', `--local-config=${bad}`, '--net=x', BUSYBOX, '--exec=/bin/true']), /network config .*dir\.conf: /);
    fs.rmdirSync(path.join(bad, 'net.d', 'dir.conf'));
    fs.writeFileSync(path.join(bad, 'net.d', 'a.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'nop', type: 'tspod-no-such-plugin' }));
    failsWith(await dd.tspod(['run', `--local-config=${bad}`, '--net=nop', BUSYBOX, '--exec=/bin/true']), /network nop .*a\.conf.*: plugin tspod-no-such-plugin: not found in \/usr\/lib\/cni/);
    assert.deepEqual(podsTree(dd.path), before, 'no pod');
  });

  test('a failing plugin: its name and message; nothing left behind; the refused pod is garbage (run) or prepared again (run-prepared), never left in run/', async () => {
    const bad = scratchDir('failing-conf');
    fs.mkdirSync(path.join(bad, 'net.d'), { recursive: true });
    fs.writeFileSync(path.join(bad, 'net.d', 'f.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'failing', plugins: [{ type: 'ptp', ipam: { type: 'host-local', ranges: [[{ subnet: '10.234.0.0/99' }]] } }] }));
    const uuidFile = path.join(scratchDir('failing'), 'u');
    const r = await dd.tspod(['run', `--local-config=${bad}`, '--net=default,failing', `--uuid-file-save=${uuidFile}`, BUSYBOX, '--exec=/bin/true']);
    failsWith(r, /network failing .*f\.conflist.*: plugin ptp: .*10\.234\.0\.0\/99/);
    const uuid = fs.readFileSync(uuidFile, 'utf8').trim();
    assert.deepEqual(leftovers(uuid), [], 'the default network added first is undone too: no rule, lease or netns mount');
    assert.ok(!fs.existsSync(path.join(dd.path, 'pods/run', uuid)), 'the refused pod is not left in run/ as if it had run');
    assert.ok(!fs.existsSync(path.join(dd.path, 'pods/garbage', uuid, 'netns')), 'it is garbage (an aborted start, for gc), with no netns file');
    assert.equal((await dd.tspod(['status', uuid])).code, 254, 'and no pod to status');
    // run-prepared refused by stage1: the pod is prepared again, with nothing of the attempt, and runs with another network.
    const u = (await ok(dd, ['prepare', '--quiet', BUSYBOX, '--exec=/bin/true'])).stdout.trim();
    failsWith(await dd.tspod(['run-prepared', `--local-config=${bad}`, '--net=default,failing', u]), /network failing .*: plugin ptp: /);
    assert.equal((await status(u)).get('state'), 'prepared');
    assert.deepEqual(leftovers(u), []);
    assert.ok(!fs.existsSync(path.join(dd.path, 'pods/prepared', u, 'networks')), 'no networks file of the attempt');
    const again = await dd.tspod(['run-prepared', '--net=none', u]);
    assert.equal(again.code, 0, describeResult(again));
    await ok(dd, ['gc', '--grace-period=0s']);
    assert.ok(!fs.existsSync(path.join(dd.path, 'pods/garbage', uuid)), 'gc removed the refused run\'s pod');
  });
});
