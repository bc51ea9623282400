// The pod's private networks: stage1 /init makes the pod's network namespace
// (a file in the pod directory, through the helper), runs each network's CNI
// plugins in it (ADD) and writes the pod's `networks`; at exit (the helper's
// exit-exec) and at gc the same record drives the DEL. Everything added is
// recorded before it is added, so a pod killed at any point is released by gc.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { POD_FILES, writePodFileAtomically, type PodManifest } from '../contract/pod.js';
import type { NetRequest, PodNetwork } from '../contract/networks.js';
import { hasPortmap, portMappingsFor } from '../contract/ports.js';
import type { AppcApp } from '../contract/appc.js';
import { checkNetworks, masquerades, pluginBinary, type NetConfList } from '../contract/netconf.js';
import { holdHostMasquerade } from '../contract/masquerade.js';
import { addNetwork, delInvocation, delNetwork, PLUGIN_TIMEOUT_MS, type CniCall } from './cni.js';

/** What stage1 added (or began to add), in the order added: POD_FILES.netConfigs. */
interface NetRecord {
  netns: string;
  containerId: string;
  networks: Array<{ conf: NetConfList; call: CniCall; added: boolean; result?: unknown }>;
}

function helperNetns(helper: string, op: 'create' | 'remove', file: string): void {
  const r = spawnSync(helper, ['netns', op, file], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(r.stderr.trim().replace(/^tspod-helper: /, '') || `tspod-helper netns ${op} ${file} failed`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** rkt's `mask`: the prefix length of an address/len. */
function prefix(cidr: string): { ip: string; len: number } {
  const [ip, len] = cidr.split('/');
  return { ip, len: Number(len) };
}

/** What the pod file says about one network, from its CNI result (any version from 0.1.0 on). */
export function podNetworkOf(conf: NetConfList, call: CniCall, result: unknown): PodNetwork {
  const out: PodNetwork = {
    name: conf.name,
    ifName: call.ifName,
    ip4: null,
    ip6: null,
    gateway: null,
    hostIfName: null,
    dns: { nameservers: [], domain: '', search: [], options: [] },
    ipMasq: masquerades(conf),
  };
  if (call.args) out.args = call.args;
  if (conf.file) out.netConf = conf.file;
  const main = conf.plugins[0] ? pluginBinary(conf.plugins[0].type) : undefined;
  if (main) out.pluginPath = main;
  if (!isObject(result)) return out;
  const setIp = (cidr: unknown, gw: unknown) => {
    if (typeof cidr !== 'string') return;
    const { ip, len } = prefix(cidr);
    if (ip.includes(':')) out.ip6 ??= ip;
    else if (out.ip4 === null) out.ip4 = ip;
    else return;
    if (out.mask === undefined || !ip.includes(':')) out.mask = len;
    if (typeof gw === 'string' && (out.gateway === null || !gw.includes(':'))) out.gateway = gw;
  };
  if (Array.isArray(result.ips)) {
    for (const i of result.ips) if (isObject(i)) setIp(i.address, i.gateway);
  } else {
    for (const k of ['ip4', 'ip6']) if (isObject(result[k])) setIp((result[k] as Record<string, unknown>).ip, (result[k] as Record<string, unknown>).gateway);
  }
  if (Array.isArray(result.interfaces)) {
    const host = result.interfaces.find((i) => isObject(i) && !i.sandbox && typeof i.name === 'string');
    if (host) out.hostIfName = (host as { name: string }).name;
  }
  if (isObject(result.dns)) {
    const d = result.dns;
    const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    out.dns = { nameservers: strings(d.nameservers), domain: typeof d.domain === 'string' ? d.domain : '', search: strings(d.search), options: strings(d.options) };
  }
  return out;
}

export interface NetworkSetup {
  podDir: string;
  uuid: string;
  requests: NetRequest[];
  localConfig: string;
  manifest: PodManifest;
  apps: ReadonlyArray<{ name: string; app?: AppcApp }>;
  /** The static helper (makes and removes the namespace file). */
  helper: string;
  /** The pod lock: held by the release (tspod-helper net-release), never by a plugin. */
  lockFd: number;
}

/**
 * Sets up the pod's networks; returns the netns file for the plan. Any failure
 * undoes what was added (DEL in reverse, the namespace removed) and throws one
 * line naming the network, its config file and the plugin.
 */
export async function setUpNetworks(s: NetworkSetup): Promise<{ netns: string; networks: PodNetwork[]; release: string }> {
  const confs = checkNetworks(s.localConfig, s.requests.map((r) => r.name));
  const netns = path.join(s.podDir, POD_FILES.netns);
  const all = confs.map((c) => ({ name: c.name, ipMasq: masquerades(c) }));
  const record: NetRecord = {
    netns,
    containerId: s.uuid,
    networks: confs.map((conf, index) => {
      const portMappings = portMappingsFor(s.manifest, s.apps, { name: conf.name, ipMasq: all[index].ipMasq, index, all });
      if (portMappings.length && !hasPortmap(conf.plugins)) throw new Error(`network ${conf.name}${conf.file ? ` (${conf.file})` : ''} carries the pod's --port forwards but has no portmap plugin with the portMappings capability`);
      const call: CniCall = { containerId: s.uuid, netns, ifName: `eth${index}`, args: s.requests[index].args, runtimeConfig: { portMappings } };
      return { conf, call, added: false };
    }),
  };
  const recordFile = path.join(s.podDir, POD_FILES.netConfigs);
  writePodFileAtomically(recordFile, JSON.stringify(record), 0o640);
  try {
    helperNetns(s.helper, 'create', netns);
    const networks: PodNetwork[] = [];
    for (const n of record.networks) {
      n.added = true; // recorded before the plugins run: a half-done ADD is DELeted too
      writePodFileAtomically(recordFile, JSON.stringify(record), 0o640);
      // Held until the pod's address is leased: gc keeps the rules for a pod being added.
      // Their check runs beside the ADD (the apps start only after both).
      const hold = n.conf.hostMasquerade ? holdHostMasquerade(n.conf.hostMasquerade) : undefined;
      try {
        n.result = addNetwork(n.conf, n.call);
        await hold?.ready;
      } finally {
        hold?.release();
      }
      writePodFileAtomically(recordFile, JSON.stringify(record), 0o640);
      networks.push(podNetworkOf(n.conf, n.call, n.result));
    }
    writePodFileAtomically(path.join(s.podDir, POD_FILES.networks), JSON.stringify(networks), 0o640);
    const release = path.join(s.podDir, POD_FILES.netRelease);
    writePodFileAtomically(release, releaseFile(record, recordFile, s.lockFd), 0o640);
    return { netns, networks, release };
  } catch (e) {
    tearDownNetworks(s.podDir, s.helper);
    throw e;
  }
}

/**
 * The release at exit, for `tspod-helper net-release FILE --exit-code=N`, which
 * the helper execs (plan exit-exec) once the apps have ended: the same DELs as
 * tearDownNetworks (each plugin of each network, in reverse, with the ADD's
 * result as prevResult and the pod lock closed for it), then the namespace file
 * and the record; it exits N. The helper itself runs them, not a shell: no
 * process but the plugins' starts at a pod's exit. A DEL that fails keeps the
 * namespace and the record, and stage1 /gc (tspod gc) tries again.
 * The format is native/helper/netrelease.c's; a value is one line.
 */
export function releaseFile(record: NetRecord, recordFile: string, lockFd: number): string {
  const out = ['tspod-net-release 1', `close ${lockFd}`];
  const line = (kw: string, v: string) => {
    if (v.includes('\n')) throw new Error(`the network release cannot carry a newline (${kw} ${JSON.stringify(v)})`);
    out.push(`${kw} ${v}`);
  };
  for (const n of [...record.networks].reverse()) {
    for (const plugin of [...n.conf.plugins].reverse()) {
      const del = delInvocation(n.conf, plugin, n.call, n.result);
      if (!del) continue;
      line('del', `${PLUGIN_TIMEOUT_MS / 1000} ${del.bin}`);
      for (const [k, v] of Object.entries(del.env)) line('env', `${k}=${v}`);
      line('fail', `tspod: network ${n.conf.name}: plugin ${plugin.type}: DEL failed; tspod gc releases it`);
      out.push(`input ${Buffer.byteLength(del.input)}`, del.input);
    }
  }
  line('netns', record.netns);
  line('unlink', recordFile);
  return out.join('\n') + '\n';
}

/**
 * Releases what the record says was added: CNI DEL of each network in reverse
 * order (the plugins remove the veth, the masquerade and port-forward rules and
 * the IPAM lease), then the namespace file, then the record. Idempotent: without
 * a record it only makes sure no namespace file is left. Returns the failures
 * (one line each); what can be released is released anyway.
 */
export function tearDownNetworks(podDir: string, helper: string): string[] {
  const recordFile = path.join(podDir, POD_FILES.netConfigs);
  const problems: string[] = [];
  let record: NetRecord | undefined;
  try {
    record = JSON.parse(fs.readFileSync(recordFile, 'utf8')) as NetRecord;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`${recordFile}: ${(e as Error).message}`);
  }
  // The pod directory may have moved (run/ to exited-garbage/): its namespace file is here now.
  const netns = path.join(podDir, POD_FILES.netns);
  for (const n of [...(record?.networks ?? [])].reverse()) {
    if (!n.added) continue;
    try {
      delNetwork(n.conf, { ...n.call, netns }, n.result);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  try {
    if (fs.existsSync(netns)) helperNetns(helper, 'remove', netns);
  } catch (e) {
    problems.push((e as Error).message);
  }
  fs.rmSync(recordFile, { force: true });
  return problems;
}
