// Port forwards of a pod (appc pod manifest `ports`, from --port): what they
// are, rkt's rules for them (common/networking/ports.go), what the CNI portmap
// plugin gets as runtimeConfig.portMappings for one network, and whether a host
// port is already taken. Shared by stage0 (prepare and run check them) and
// stage1 (/init checks again and hands the mappings to portmap).
//
// The forward itself is the Debian portmap plugin's: DNAT from PREROUTING and
// OUTPUT (for local destinations), and with `snat` a MASQUERADE for connections
// from 127.0.0.1 plus route_localnet on the pod's host-side interface, so that
// the host's own 127.0.0.1 reaches the pod too. No userland proxy: nothing on
// the host listens on a forwarded port.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { LOCK_EX, sys } from '../../native/sys.js';
import type { AppcApp, AppcPort } from './appc.js';
import type { PodManifest } from './pod.js';

/** One entry of the pod manifest's `ports` (appc's ExposedPort). */
export interface ExposedPort {
  name: string;
  hostPort: number;
  /** Absent: every address of the host (0.0.0.0). */
  hostIP?: string;
  /** The pod-side port, when no app names one (appc; rkt's CRI use). */
  podPort?: AppcPort;
}

export type ForwardProtocol = 'tcp' | 'udp';

/** A forward as the rules see it: the host side and the pod side. */
export interface ForwardedPort {
  name: string;
  protocol: ForwardProtocol;
  /** 0.0.0.0 for every address of the host. */
  hostIP: string;
  hostPort: number;
  podPort: number;
}

/** CNI's portMappings capability entry. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: ForwardProtocol;
  hostIP?: string;
}

/**
 * The network stage1 asks about: its name, whether it masquerades, its index in
 * the pod's list and that whole list (the forwards go through the first network
 * with ipMasq, else the last: rkt's rule).
 */
export interface PortNetwork {
  name: string;
  ipMasq: boolean;
  index: number;
  all: ReadonlyArray<{ name: string; ipMasq: boolean }>;
}

export const ANY_IP = '0.0.0.0';
const AC_NAME = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const PROTOCOLS: readonly string[] = ['tcp', 'udp'];

function validPort(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
}

/**
 * `--port=NAME:[HOSTIP:]HOSTPORT`: the manifest entry, or why the value is wrong.
 * HOSTIP is an IPv4 address (the pod's networks are IPv4).
 */
export function parsePortFlag(value: string): ExposedPort | string {
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3) return `${JSON.stringify(value)} is not in NAME:[HOSTIP:]HOSTPORT format`;
  const [name] = parts;
  if (!AC_NAME.test(name)) return `${JSON.stringify(name)} is not a valid port name (lower-case letters, digits and dashes)`;
  const portText = parts[parts.length - 1];
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!validPort(port)) return `${JSON.stringify(portText)} is not a valid port number (1-65535)`;
  if (parts.length === 2) return { name, hostPort: port };
  const ip = parts[1];
  if (!IPV4.test(ip)) return `${JSON.stringify(ip)} is not a valid IPv4 address`;
  return { name, hostPort: port, hostIP: ip };
}

/** Checks the shape of a pod manifest's `ports` (from --pod-manifest); throws an Error saying what is wrong. */
export function checkExposedPorts(ports: unknown): void {
  if (ports === undefined || ports === null) return;
  if (!Array.isArray(ports)) throw new Error('ports must be a list');
  for (const p of ports as Array<Record<string, unknown>>) {
    if (typeof p !== 'object' || p === null || typeof p.name !== 'string' || !AC_NAME.test(p.name)) {
      throw new Error(`port name ${JSON.stringify((p as { name?: unknown } | null)?.name ?? null)} is not an AC Name (lower-case letters, digits and dashes)`);
    }
    if (!validPort(p.hostPort)) throw new Error(`port ${p.name}: hostPort must be a number from 1 to 65535`);
    if (p.hostIP !== undefined && (typeof p.hostIP !== 'string' || !IPV4.test(p.hostIP))) {
      throw new Error(`port ${p.name}: hostIP ${JSON.stringify(p.hostIP)} is not an IPv4 address`);
    }
    if (p.podPort !== undefined) {
      const pp = p.podPort as Record<string, unknown> | null;
      if (typeof pp !== 'object' || pp === null || !validPort(pp.port) || typeof pp.protocol !== 'string') {
        throw new Error(`port ${p.name}: podPort must be {"name", "protocol", "port"} with a port from 1 to 65535`);
      }
    }
  }
}

/** A forward rkt refuses: its wording as the message, and what to do about it. */
export class PortError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** The app port named `name`, or an error when two apps define it (rkt's findAppPort). */
function findAppPort(apps: ReadonlyArray<{ app?: AppcApp }>, name: string): AppcPort | undefined {
  let found: AppcPort | undefined;
  for (const a of apps) {
    for (const p of a.app?.ports ?? []) {
      if (p.name !== name) continue;
      if (found) throw new PortError(`port name ${JSON.stringify(name)} defined multiple apps`, 'give the port in a pod manifest (--pod-manifest) with podPort');
      found = p;
    }
  }
  return found;
}

/** rkt's conflict rule: same protocol and host port, and either is on every address or both on the same one. */
export function forwardsConflict(a: Pick<ForwardedPort, 'protocol' | 'hostIP' | 'hostPort'>, b: Pick<ForwardedPort, 'protocol' | 'hostIP' | 'hostPort'>): boolean {
  if (a.protocol !== b.protocol || a.hostPort !== b.hostPort) return false;
  return a.hostIP === ANY_IP || b.hostIP === ANY_IP || a.hostIP === b.hostIP;
}

/**
 * The pod's forwards (rkt's ForwardedPorts): each manifest port matched by name
 * with the one app port of that name (unless it gives podPort), none of them in
 * conflict. `apps`: each app's effective appc app (the pod manifest's, else its
 * image's). Throws an Error with rkt's wording.
 */
export function forwardedPorts(manifest: Pick<PodManifest, 'ports'>, apps: ReadonlyArray<{ app?: AppcApp }>): ForwardedPort[] {
  const out: ForwardedPort[] = [];
  for (const ep of manifest.ports ?? []) {
    const podPort = ep.podPort ?? findAppPort(apps, ep.name);
    if (!podPort) throw new PortError(`port name ${JSON.stringify(ep.name)} could not be found in any apps`, 'tspod image cat-manifest IMAGE lists an image\'s ports (app.ports; 80-tcp for a Docker image\'s 80/tcp)');
    const protocol = String(podPort.protocol).toLowerCase();
    if (!PROTOCOLS.includes(protocol)) throw new PortError(`port name ${JSON.stringify(ep.name)}: protocol ${JSON.stringify(podPort.protocol)} cannot be forwarded`, 'only tcp and udp ports can be');
    const fp: ForwardedPort = { name: ep.name, protocol: protocol as ForwardProtocol, hostIP: ep.hostIP || ANY_IP, hostPort: ep.hostPort, podPort: podPort.port };
    const other = out.find((o) => forwardsConflict(fp, o));
    if (other) throw new PortError(`port ${fp.protocol}-${fp.hostIP}:${fp.hostPort} already mapped to pod port ${other.podPort}`, 'forward each host port once (or on distinct host addresses)');
    out.push(fp);
  }
  return out;
}

/** rkt's refusal of forwards without a network of the pod's own; undefined when `net` can carry them. */
export function portsNetProblem(manifest: Pick<PodManifest, 'ports'>, net: string | undefined): string | undefined {
  if (!manifest.ports?.length || net === undefined) return undefined;
  const items = net.split(',');
  for (const kind of ['none', 'host']) if (items.includes(kind)) return `--port flag does not work with '${kind}' networking`;
  return undefined;
}

/** Index of the network the forwards go through: the first with ipMasq, else the last (rkt's rule). */
export function forwardingNetworkIndex(all: ReadonlyArray<{ ipMasq: boolean }>): number {
  const masq = all.findIndex((n) => n.ipMasq);
  return masq >= 0 ? masq : all.length - 1;
}

/** The pod's forwards as portmap's mappings on `network`: all of them on the network that carries them, [] on the others. */
export function portMappingsOn(manifest: PodManifest, apps: ReadonlyArray<{ app?: AppcApp }>, network: PortNetwork): PortMapping[] {
  if (!manifest.ports?.length || network.index !== forwardingNetworkIndex(network.all)) return [];
  return forwardedPorts(manifest, apps).map((f) => ({
    hostPort: f.hostPort,
    containerPort: f.podPort,
    protocol: f.protocol,
    ...(f.hostIP === ANY_IP ? {} : { hostIP: f.hostIP }),
  }));
}

/**
 * stage1's call, right before the network's ADD: portMappingsOn, and when there
 * are mappings, first the host-wide ports lock (held until this process execs or
 * exits: its fd is close-on-exec, so of two pods that start at once only one can
 * take a port), the check that no host socket or other forward holds the ports,
 * and the guard rule for route_localnet. Throws an Error saying what is wrong.
 */
export function portMappingsFor(manifest: PodManifest, apps: ReadonlyArray<{ name: string; app?: AppcApp }>, network: PortNetwork): PortMapping[] {
  const mappings = portMappingsOn(manifest, apps, network);
  if (mappings.length === 0) return mappings;
  lockHostPorts();
  const taken = hostPortsProblem(forwardedPorts(manifest, apps));
  if (taken) throw new Error(taken);
  ensureLocalnetGuard();
  return mappings;
}

/** Whether a network's plugins can carry forwards: a portmap plugin with the portMappings capability. */
export function hasPortmap(plugins: ReadonlyArray<Record<string, unknown> & { type: string }>): boolean {
  return plugins.some((p) => p.type === 'portmap' && (p.capabilities as { portMappings?: unknown } | undefined)?.portMappings === true);
}

/** Host-wide (every data directory's pods): whoever holds it is between checking its host ports and adding its forwards. */
export const PORTS_LOCK = '/run/tspod/ports.lock';
let portsLockFd: number | undefined;

function lockHostPorts(): void {
  if (portsLockFd !== undefined) return;
  fs.mkdirSync(path.dirname(PORTS_LOCK), { recursive: true, mode: 0o755 });
  const fd = fs.openSync(PORTS_LOCK, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  sys().flock(fd, LOCK_EX);
  portsLockFd = fd; // never closed: the exec of the helper (close-on-exec) or the exit releases it
}

/**
 * portmap's `snat` sets route_localnet on the pod's host-side interface, so that
 * the host's 127.0.0.1 reaches the pod; that also makes the host's 127/8
 * routable from the pod, which then reaches services the host keeps to
 * loopback (Kubernetes' CVE-2020-8558; test/network-ports shows it). This rule
 * drops packets for 127/8 that come in on any interface but lo, unless
 * they belong to a connection the host made or forwarded (the forwards'
 * replies). Host-wide and kept, as portmap's own chains are; without
 * route_localnet such packets are martians and never get here.
 */
export const LOCALNET_GUARD = [
  'INPUT', '!', '-i', 'lo', '-d', '127.0.0.0/8',
  '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED,DNAT',
  '-m', 'comment', '--comment', 'tspod: no 127/8 from pods (route_localnet)',
  '-j', 'DROP',
];

function ensureLocalnetGuard(): void {
  if (spawnSync('iptables', ['-w', '-t', 'filter', '-C', ...LOCALNET_GUARD], { stdio: 'ignore' }).status === 0) return;
  const r = spawnSync('iptables', ['-w', '-t', 'filter', '-I', ...LOCALNET_GUARD], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`iptables cannot add the rule that keeps pods off the host's 127.0.0.1: ${(r.stderr || String(r.error ?? r.status)).trim()}`);
}

// ---------------------------------------------------------------- what the host already uses

/** A host port that is taken: by a socket of the host, or by another forward (a CNI portmap rule). */
export interface PortUse {
  protocol: ForwardProtocol;
  hostIP: string;
  hostPort: number;
  /** 'socket', or the CNI container id whose portmap rule forwards it (a tspod pod's UUID). */
  by: string;
}

/** `0100007F:1F90` (or the 32-digit IPv6 form) from /proc/net/tcp as [address, port]; v4-mapped IPv6 as IPv4, other IPv6 as undefined. */
function procNetAddress(hex: string): [string | undefined, number] {
  const [addr, port] = hex.split(':');
  const word = (w: string) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16));
  let bytes: number[];
  if (addr.length === 8) bytes = word(addr);
  else {
    const words = [0, 8, 16, 24].map((i) => addr.slice(i, i + 8));
    if (/^0+$/.test(addr)) bytes = [0, 0, 0, 0];
    else if (/^0{16}FFFF0000$/i.test(words.slice(0, 3).join(''))) bytes = word(words[3]);
    else return [undefined, parseInt(port, 16)];
  }
  return [bytes.join('.'), parseInt(port, 16)];
}

/** Listening TCP sockets and bound UDP sockets of this network namespace (the host's, for stage0 and stage1 /init). */
export function hostSockets(): PortUse[] {
  const out: PortUse[] = [];
  for (const [file, protocol] of [['tcp', 'tcp'], ['tcp6', 'tcp'], ['udp', 'udp'], ['udp6', 'udp']] as const) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/net/${file}`, 'utf8');
    } catch {
      continue; // no IPv6 in this kernel
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      // tcp: LISTEN (0A) only; udp: any bound socket (a connected one still owns its port).
      if (protocol === 'tcp' && f[3] !== '0A') continue;
      const [ip, port] = procNetAddress(f[1]);
      if (ip === undefined) continue;
      out.push({ protocol, hostIP: ip, hostPort: port, by: 'socket' });
    }
  }
  return out;
}

/**
 * The forwards of CNI's portmap plugin on this host (any runtime's, tspod's pods
 * in any data directory included), from `iptables-save -t nat`: the DNAT rules in
 * its per-container CNI-DN-* chains, with the container id of the jump to each.
 */
export function portmapForwards(run: (cmd: string, args: string[]) => string | undefined = runQuietly): PortUse[] {
  const text = run('iptables-save', ['-t', 'nat']);
  if (!text) return [];
  const owner = new Map<string, string>();
  for (const m of text.matchAll(/^-A CNI-HOSTPORT-DNAT .*id: \\"([^"\\]+)\\".* -j (CNI-DN-\S+)$/gm)) owner.set(m[2], m[1]);
  const out: PortUse[] = [];
  for (const m of text.matchAll(/^-A (CNI-DN-\S+) (.*) -j DNAT .*$/gm)) {
    const rule = m[2];
    const proto = /(?:^| )-p (tcp|udp)(?: |$)/.exec(rule)?.[1] as ForwardProtocol | undefined;
    const port = /--dport (\d+)(?: |$)/.exec(rule)?.[1];
    if (!proto || !port) continue;
    const dst = /(?:^| )-d (\d+\.\d+\.\d+\.\d+)\/32(?: |$)/.exec(rule)?.[1];
    out.push({ protocol: proto, hostIP: dst ?? ANY_IP, hostPort: Number(port), by: owner.get(m[1]) ?? m[1] });
  }
  return out;
}

function runQuietly(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return r.status === 0 ? r.stdout : undefined;
}

/** Why a forward cannot be set up now (a host socket or another forward holds its port), or undefined. */
export function portInUseProblem(forwards: readonly ForwardedPort[], uses: readonly PortUse[]): string | undefined {
  for (const f of forwards) {
    const u = uses.find((x) => forwardsConflict(f, x));
    if (!u) continue;
    const what = `port ${f.protocol} ${f.hostIP === ANY_IP ? '' : `${f.hostIP}:`}${f.hostPort} (--port=${f.name})`;
    if (u.by === 'socket') return `${what} is already in use on the host (a ${f.protocol === 'tcp' ? 'listening' : 'bound'} socket on ${u.hostIP}:${u.hostPort})`;
    return `${what} is already forwarded to ${/^[0-9a-f-]{36}$/.test(u.by) ? `pod ${u.by}` : `container ${u.by}`}`;
  }
  return undefined;
}

/** Checks the host for the forwards (sockets, then other forwards): why they cannot be set up, or undefined. */
export function hostPortsProblem(forwards: readonly ForwardedPort[]): string | undefined {
  if (forwards.length === 0) return undefined;
  return portInUseProblem(forwards, hostSockets()) ?? portInUseProblem(forwards, portmapForwards());
}

/**
 * What stops the pod's forwards, as stage1 /init checks again (rkt's stage1
 * does): a bad forward, or a network without one of the pod's own. Undefined
 * when fine (the host ports are checked by portMappingsFor, under the lock).
 */
export function podPortsProblem(manifest: Pick<PodManifest, 'ports' | 'apps'>, net: string | undefined): string | undefined {
  if (!manifest.ports?.length) return undefined;
  try {
    forwardedPorts(manifest, manifest.apps);
  } catch (e) {
    return (e as Error).message;
  }
  return portsNetProblem(manifest, net);
}
