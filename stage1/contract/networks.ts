// The pod's networks: what `--net` asks for (parsed the same way by stage0 and
// stage1) and what stage1 /init writes back after the CNI plugins ran (pod file
// `networks`, read by status, list, the DNS and metadata-service code).
import fs from 'node:fs';
import path from 'node:path';
import { POD_FILES } from './pod.js';

/** One network of the pod, as stage1 /init writes it (interfaces eth0, eth1, … in --net order). */
export interface PodNetwork {
  name: string;
  ifName: string;
  ip4: string | null;
  ip6: string | null;
  /** The host side's address, reachable from the pod (the metadata service listens there). */
  gateway: string | null;
  /** The host end of the veth, when the plugin said. */
  hostIfName: string | null;
  /** What CNI returned (empty lists when it said nothing). */
  dns: { nameservers: string[]; domain: string; search: string[]; options: string[] };
  ipMasq: boolean;
  /** Prefix length of ip4 (or ip6 when there is no ip4): rkt's `mask`. */
  mask?: number;
  /** The CNI_ARGS given after `NAME:`. */
  args?: string;
  /** The config file (named networks; absent for the generated ones). */
  netConf?: string;
  /** The main plugin's binary. */
  pluginPath?: string;
}

/** rkt's `networks=` value (status, list): `NAME:ip4=ADDR` for each network, comma-separated. */
export function networksText(nets: readonly PodNetwork[]): string {
  return nets.map((n) => `${n.name}:ip4=${n.ip4 ?? n.ip6 ?? ''}`).join(',');
}

/** rkt's JSON netinfo (pkg/netinfo): mask as Go marshals a net.IPMask (base64 of its bytes). */
export function networksJson(nets: readonly PodNetwork[]): Array<Record<string, unknown>> {
  return nets.map((n) => {
    const v6 = n.ip4 === null && n.ip6 !== null;
    const bits = v6 ? 128 : 32;
    let mask: string | null = null;
    if (n.mask !== undefined && n.mask >= 0 && n.mask <= bits) {
      const bytes = Buffer.alloc(bits / 8);
      for (let i = 0; i < n.mask; i++) bytes[i >> 3] |= 0x80 >> (i & 7);
      mask = bytes.toString('base64');
    }
    return { netName: n.name, netConf: n.netConf ?? '', pluginPath: n.pluginPath ?? '', ifName: n.ifName, ip: n.ip4 ?? n.ip6, args: n.args ?? '', mask };
  });
}

/** The networks tspod generates itself (rkt's). */
export const DEFAULT_NETWORKS = ['default', 'default-restricted'] as const;

/** One element of a --net list. */
export interface NetRequest {
  name: string;
  /** CNI_ARGS (`NAME:ARGS`): `K=V;K=V`. */
  args?: string;
}

/** What a --net value asks for: the host's network, no network (loopback only), or private networks. */
export type NetChoice = { kind: 'host' } | { kind: 'none' } | { kind: 'private'; networks: NetRequest[] };

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Parses a --net value (`default` when absent or empty): `host` and `none` alone,
 * else a comma list of `default`, `default-restricted` or `NAME[:CNI_ARGS]`, each
 * once. Throws an Error with the reason.
 */
export function parseNet(value: string | undefined): NetChoice {
  const v = value === undefined || value === '' ? 'default' : value;
  const items = v.split(',');
  if (items.some((i) => i === 'host' || i === 'none')) {
    if (items.length > 1) throw new Error(`--net=${v}: host and none cannot be combined with other networks`);
    return { kind: items[0] as 'host' | 'none' };
  }
  const networks: NetRequest[] = [];
  for (const item of items) {
    const colon = item.indexOf(':');
    const name = colon < 0 ? item : item.slice(0, colon);
    const args = colon < 0 ? undefined : item.slice(colon + 1);
    if (!NAME_RE.test(name)) throw new Error(`--net=${v}: bad network name ${JSON.stringify(name)}`);
    if (args !== undefined && (args === '' || /[\x00-\x1f]/.test(args) || !args.split(';').every((kv) => /^[^=;]+=[^;]*$/.test(kv)))) {
      throw new Error(`--net=${v}: bad CNI_ARGS ${JSON.stringify(args)} for ${name} (want NAME:KEY=VALUE[;KEY=VALUE…])`);
    }
    if (networks.some((n) => n.name === name)) throw new Error(`--net=${v}: network ${name} is given twice`);
    networks.push(args === undefined ? { name } : { name, args });
  }
  return { kind: 'private', networks };
}

/** The pod's networks (pod file `networks`); [] when it has none (host, none, not started, or an older stage1). */
export function readPodNetworks(podDir: string): PodNetwork[] {
  let text: string;
  try {
    text = fs.readFileSync(path.join(podDir, POD_FILES.networks), 'utf8');
  } catch {
    return [];
  }
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? (v as PodNetwork[]) : [];
  } catch {
    return [];
  }
}
