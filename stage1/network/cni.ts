// Running CNI plugins (CNI spec, "Execution Protocol"): the binary named by a
// plugin's "type" in CNI_PATH, the command and the container in the
// environment, the plugin's configuration on stdin, a result or an error as
// JSON on stdout. A configuration list chains: each ADD gets the previous
// result as prevResult, DEL runs the plugins in reverse order.
import { spawnSync } from 'node:child_process';
import { cniPath, pluginBinary, type NetConfList, type PluginConf } from '../contract/netconf.js';

export interface CniCall {
  containerId: string;
  netns: string;
  ifName: string;
  /** CNI_ARGS (`K=V;K=V`). */
  args?: string;
  /** What the capabilities the plugins declare get (CNI "runtimeConfig"), e.g. portMappings. */
  runtimeConfig?: Record<string, unknown>;
}

/** The stdin of one plugin of `list`: its own configuration with the list's name and version, runtimeConfig for its capabilities, prevResult. */
function pluginInput(list: NetConfList, plugin: PluginConf, call: CniCall, prevResult: unknown): string {
  const { capabilities, ...rest } = plugin;
  const conf: Record<string, unknown> = { ...rest, cniVersion: list.cniVersion, name: list.name };
  if (capabilities && typeof capabilities === 'object' && call.runtimeConfig) {
    const rc: Record<string, unknown> = {};
    for (const [k, on] of Object.entries(capabilities as Record<string, unknown>)) if (on === true && k in call.runtimeConfig) rc[k] = call.runtimeConfig[k];
    if (Object.keys(rc).length) conf.runtimeConfig = rc;
  }
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return JSON.stringify(conf);
}

/** A plugin that hangs (an iptables lock held forever, …) must not hang the pod's start or release. */
export const PLUGIN_TIMEOUT_MS = 120_000;

/** How one plugin is run: its binary, environment and stdin. */
export interface Invocation {
  bin: string;
  env: Record<string, string>;
  input: string;
}

function where(list: NetConfList, plugin: PluginConf): string {
  return `network ${list.name}${list.file ? ` (${list.file})` : ''}: plugin ${plugin.type}`;
}

function invocation(command: 'ADD' | 'DEL', list: NetConfList, plugin: PluginConf, call: CniCall, prevResult: unknown): Invocation {
  const bin = pluginBinary(plugin.type);
  if (!bin) throw new Error(`${where(list, plugin)}: not found in ${cniPath()} (is containernetworking-plugins installed?)`);
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.ifName,
    CNI_PATH: cniPath(),
  };
  if (call.args) env.CNI_ARGS = call.args;
  return { bin, env, input: pluginInput(list, plugin, call, prevResult) };
}

/** The DEL of one plugin of a list after an ADD that gave `result`; undefined when it has nothing to do. */
export function delInvocation(list: NetConfList, plugin: PluginConf, call: CniCall, result: unknown): Invocation | undefined {
  return idle(plugin, call) ? undefined : invocation('DEL', list, plugin, call, list.single ? undefined : result);
}

/** Runs one plugin; returns its parsed stdout (undefined when empty), or throws an Error naming the network, the plugin and its message. */
export function execPlugin(command: 'ADD' | 'DEL', list: NetConfList, plugin: PluginConf, call: CniCall, prevResult: unknown): unknown {
  const { bin, env, input } = invocation(command, list, plugin, call, prevResult);
  const here = where(list, plugin);
  const r = spawnSync(bin, [], { input, env: { ...env, PATH: process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin' }, timeout: PLUGIN_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 4 << 20 });
  if (r.error) throw new Error(`${here}: ${(r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `no answer in ${PLUGIN_TIMEOUT_MS / 1000} s (killed)` : r.error.message}`);
  const out = r.stdout.trim();
  if (r.status !== 0) {
    let msg = r.stderr.trim().split('\n').pop() || `exited with ${r.status ?? `signal ${r.signal}`}`;
    try {
      const e = JSON.parse(out) as { msg?: string; details?: string };
      if (e.msg) msg = e.details ? `${e.msg}: ${e.details}` : e.msg;
    } catch {
      /* not JSON: stderr's last line */
    }
    throw new Error(`${here}: ${msg.replace(/\s*\n\s*/g, ' ')}`);
  }
  if (!out) return undefined;
  try {
    return JSON.parse(out) as unknown;
  } catch {
    throw new Error(`${here}: its result is not JSON`);
  }
}

/**
 * portmap without port mappings passes its prevResult through on ADD and does
 * nothing on DEL (plugins/meta/portmap): not run then, which saves a process
 * start at each end of every pod without --port.
 */
function idle(plugin: PluginConf, call: CniCall): boolean {
  const pm = call.runtimeConfig?.portMappings;
  const own = plugin.runtimeConfig; // a config's own static mappings
  const hasOwn = typeof own === 'object' && own !== null && 'portMappings' in own;
  return plugin.type === 'portmap' && (pm === undefined || (Array.isArray(pm) && pm.length === 0)) && !hasOwn;
}

/** ADD of a whole list (chained); returns the last result. */
export function addNetwork(list: NetConfList, call: CniCall): unknown {
  let result: unknown;
  for (const plugin of list.plugins) if (!idle(plugin, call)) result = execPlugin('ADD', list, plugin, call, list.single ? undefined : result);
  return result;
}

/**
 * DEL of a whole list, plugins in reverse order, each given the ADD's result
 * (when known) as prevResult. Goes on past a failing plugin; throws the first
 * failure at the end.
 */
export function delNetwork(list: NetConfList, call: CniCall, result: unknown): void {
  let first: Error | undefined;
  for (const plugin of [...list.plugins].reverse()) {
    if (idle(plugin, call)) continue;
    try {
      execPlugin('DEL', list, plugin, call, list.single ? undefined : result);
    } catch (e) {
      first ??= e as Error;
    }
  }
  if (first) throw first;
}
