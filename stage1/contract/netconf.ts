// The CNI network configurations of a pod: the two tspod generates (rkt's
// `default` and `default-restricted`) and named ones from <local-config>/net.d
// (*.conf: one plugin, *.conflist: a chain), found by their "name" field, and
// the plugins' binaries. stage0 checks a --net list with it before a pod
// starts; stage1 runs what it returns.
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_MASQUERADE, type HostMasquerade } from './masquerade.js';

/** One plugin's configuration (CNI spec: "type" names the binary). */
export type PluginConf = Record<string, unknown> & { type: string };

/** A network configuration list (a single .conf is a list of one without chaining). */
export interface NetConfList {
  cniVersion: string;
  name: string;
  plugins: PluginConf[];
  /** The file it came from; undefined for a generated network. */
  file?: string;
  /** A single-plugin .conf: run as is, without prevResult (CNI spec). */
  single?: boolean;
  /** Masqueraded by host-wide rules (contract/masquerade.ts) rather than by its plugin's ipMasq: the generated default. */
  hostMasquerade?: HostMasquerade;
}

/** Whether the network's pods reach beyond the host through masquerade (its plugin's ipMasq, or the host-wide rules). */
export function masquerades(conf: NetConfList): boolean {
  return conf.hostMasquerade !== undefined || conf.plugins[0]?.ipMasq === true;
}

/** The CNI version of the generated configurations (Debian's plugins 1.1.1 speak 0.1.0 … 1.0.0). */
export const CNI_VERSION = '1.0.0';

/** The portmap plugin, chained after the generated networks' ptp (net-ports fills its runtimeConfig). */
const PORTMAP: PluginConf = { type: 'portmap', capabilities: { portMappings: true }, snat: true };

/**
 * rkt's default networks: ptp veths with host-local IPAM; default masquerades
 * (through host-wide rules, not the plugin's per-pod ipMasq: contract/masquerade.ts)
 * and routes everything, restricted only reaches the host.
 */
export function generatedNetwork(name: string): NetConfList | undefined {
  if (name === 'default') {
    return {
      cniVersion: CNI_VERSION,
      name,
      plugins: [
        { type: 'ptp', ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: DEFAULT_MASQUERADE.subnet, gateway: '172.16.28.1' }]], routes: [{ dst: '0.0.0.0/0' }] } },
        PORTMAP,
      ],
      hostMasquerade: DEFAULT_MASQUERADE,
    };
  }
  if (name === 'default-restricted') {
    return {
      cniVersion: CNI_VERSION,
      name,
      plugins: [{ type: 'ptp', ipMasq: false, ipam: { type: 'host-local', ranges: [[{ subnet: '172.17.0.0/16', gateway: '172.17.0.1' }]] } }, PORTMAP],
    };
  }
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads and checks one config file; throws an Error naming the file. */
export function readConfFile(file: string): NetConfList {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`network config ${file}: ${(e as NodeJS.ErrnoException).code === 'EACCES' ? 'permission denied' : (e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`network config ${file}: not valid JSON (${(e as Error).message})`);
  }
  const bad = (what: string) => new Error(`network config ${file}: ${what}`);
  if (!isObject(v)) throw bad('not a JSON object');
  if (typeof v.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v.name)) throw bad('no valid "name"');
  const cniVersion = typeof v.cniVersion === 'string' ? v.cniVersion : '0.1.0';
  const checkPlugin = (p: unknown, where: string): PluginConf => {
    if (!isObject(p) || typeof p.type !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(p.type)) throw bad(`${where} has no valid "type"`);
    return p as PluginConf;
  };
  if (file.endsWith('.conflist')) {
    if (!Array.isArray(v.plugins) || v.plugins.length === 0) throw bad('"plugins" must be a non-empty list');
    return { cniVersion, name: v.name, plugins: v.plugins.map((p, i) => checkPlugin(p, `plugin ${i}`)), file };
  }
  const { cniVersion: _v, name: _n, ...plugin } = v;
  return { cniVersion, name: v.name, plugins: [checkPlugin(plugin, 'the config')], file, single: true };
}

/**
 * The named network `name` from <localConfig>/net.d: the first *.conf or
 * *.conflist (in file-name order) whose "name" is it; undefined when none has
 * it. A file read before the match that cannot be read or parsed is an error
 * (its name is unknown, it might be the one).
 */
export function findNamedNetwork(localConfig: string, name: string): NetConfList | undefined {
  const dir = path.join(localConfig, 'net.d');
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.conf') || n.endsWith('.conflist')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`network configs ${dir}: ${(e as Error).message}`);
  }
  for (const n of names) {
    const conf = readConfFile(path.join(dir, n));
    if (conf.name === name) return conf;
  }
  return undefined;
}

/** The configuration of one requested network: generated, or found in net.d; throws for an unknown name. */
export function loadNetwork(localConfig: string, name: string): NetConfList {
  const conf = generatedNetwork(name) ?? findNamedNetwork(localConfig, name);
  if (!conf) throw new Error(`unknown network ${JSON.stringify(name)}: no config named so in ${path.join(localConfig, 'net.d')} (and it is not default or default-restricted)`);
  return conf;
}

/** The host's plugins (Debian's containernetworking-plugins): CNI_PATH. Fixed: nothing in the environment may point stage1 at other binaries. */
export function cniPath(): string {
  return '/usr/lib/cni';
}

/** The binary of a plugin type: the first CNI_PATH directory that has it. */
export function pluginBinary(type: string): string | undefined {
  for (const dir of cniPath().split(':').filter(Boolean)) {
    const p = path.join(dir, type);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next directory */
    }
  }
  return undefined;
}

/** Checks that every network of the list has a config and every plugin a binary; throws the first problem as an Error. */
export function checkNetworks(localConfig: string, names: readonly string[]): NetConfList[] {
  return names.map((name) => {
    const conf = loadNetwork(localConfig, name);
    const missing = conf.plugins.find((p) => !pluginBinary(p.type));
    if (missing) throw new Error(`network ${conf.name}${conf.file ? ` (${conf.file})` : ''}: plugin ${missing.type}: not found in ${cniPath()} (is containernetworking-plugins installed?)`);
    return conf;
  });
}
