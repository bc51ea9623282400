// DNS and hosts (docs/architecture.md, "Networking"; rkt's Documentation/networking/dns.md):
// what --dns, --dns-search, --dns-opt, --dns-domain and --hosts-entry ask for
// (checked by stage0 at prepare, stored as the pod's `dns` file), and what stage1
// makes of it: the text of the pod's resolv.conf and hosts files, bound read-only
// over each app's /etc/resolv.conf and /etc/hosts by the helper's plan.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { POD_FILES } from './pod.js';

/**
 * The pod's DNS settings (the pod file `dns`, JSON; absent: every default).
 * resolv: `flags` (a resolv.conf from --dns/--dns-search/--dns-opt/--dns-domain),
 * `host` (the host's /etc/resolv.conf), `none` (a network's DNS is ignored: the
 * image's own file stays), `default` (a network's DNS if one returned some, else
 * the image's). hosts: `flags` (localhost lines and --hosts-entry's), `host`
 * (the host's /etc/hosts), `default` (the image's, or a localhost fallback).
 */
export interface PodDns {
  resolv: 'default' | 'flags' | 'host' | 'none';
  nameservers: string[];
  search: string[];
  options: string[];
  domain: string;
  hosts: 'default' | 'flags' | 'host';
  hostsEntries: HostsEntry[];
}

export interface HostsEntry {
  ip: string;
  names: string[];
}

/** DNS data a network returned (CNI's result `dns`), as stage1 records it per network. */
export interface NetworkDns {
  name: string;
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] } | null;
}

export const DEFAULT_DNS: PodDns = { resolv: 'default', nameservers: [], search: [], options: [], domain: '', hosts: 'default', hostsEntries: [] };

/** The flags as given (each repeatable flag's values in order). */
export interface DnsFlags {
  dns: string[];
  search: string[];
  options: string[];
  domain?: string;
  hostsEntries: string[];
}

// A domain or host name: letters, digits, `_`, `-` and dots, not starting with a
// dot or dash; nothing a resolv.conf or hosts line could read as a separator or a
// comment.
const NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$/;
// A resolver option: `rotate`, `ndots:2`, `timeout:1`, `edns0`, `single-request`.
const OPTION = /^[A-Za-z0-9][A-Za-z0-9_-]*(:[0-9]{1,4})?$/;

const isIp = (s: string) => net.isIP(s) !== 0;

/** Comma lists split, every part kept (an empty one is an error for the caller). */
function items(values: string[]): string[] {
  return values.flatMap((v) => v.split(','));
}

/**
 * rkt's rules: --dns=host and --dns=none stand alone (no other --dns value, no
 * --dns-search, --dns-opt or --dns-domain); --hosts-entry=host stands alone (no
 * IP=NAME entry). Throws an Error with the one-line message for anything else
 * (a malformed IP, an empty or malformed name or option).
 */
export function parseDnsFlags(f: DnsFlags): PodDns {
  const out: PodDns = { ...DEFAULT_DNS, nameservers: [], search: [], options: [], hostsEntries: [] };
  const dns = items(f.dns);
  const magic = dns.find((d) => d === 'host' || d === 'none');
  if (magic) {
    if (dns.length > 1 || f.search.length || f.options.length || f.domain !== undefined) {
      throw new Error(`--dns=${magic} cannot be combined with other --dns, --dns-search, --dns-opt or --dns-domain values`);
    }
    out.resolv = magic as 'host' | 'none';
  } else {
    for (const d of dns) {
      if (!isIp(d)) throw new Error(`--dns: ${JSON.stringify(d)} is not an IP address (or host, or none)`);
      out.nameservers.push(d);
    }
    for (const s of items(f.search)) {
      if (!NAME.test(s)) throw new Error(`--dns-search: ${JSON.stringify(s)} is not a domain name`);
      out.search.push(s);
    }
    for (const o of items(f.options)) {
      if (!OPTION.test(o)) throw new Error(`--dns-opt: ${JSON.stringify(o)} is not a resolver option (like ndots:2 or rotate)`);
      out.options.push(o);
    }
    if (f.domain !== undefined) {
      if (!NAME.test(f.domain)) throw new Error(`--dns-domain: ${JSON.stringify(f.domain)} is not a domain name`);
      out.domain = f.domain;
    }
    if (out.nameservers.length || out.search.length || out.options.length || out.domain) out.resolv = 'flags';
  }

  const entries = items(f.hostsEntries);
  if (entries.includes('host')) {
    if (entries.length > 1) throw new Error('--hosts-entry=host cannot be combined with IP=NAME entries');
    out.hosts = 'host';
  } else if (entries.length) {
    // IP=NAME[,NAME...] and rkt's IP=NAME,IP=NAME: a part without `=` is one more
    // name of the entry before it. Entries of one IP are merged.
    let current: HostsEntry | undefined;
    for (const e of entries) {
      const eq = e.indexOf('=');
      let name = e;
      if (eq >= 0) {
        const ip = e.slice(0, eq);
        name = e.slice(eq + 1);
        if (!isIp(ip)) throw new Error(`--hosts-entry: ${JSON.stringify(ip)} is not an IP address (want IP=NAME[,NAME...] or host)`);
        current = out.hostsEntries.find((h) => h.ip === ip);
        if (!current) out.hostsEntries.push((current = { ip, names: [] }));
      } else if (!current) {
        throw new Error(`--hosts-entry: ${JSON.stringify(e)} is not IP=NAME (or host)`);
      }
      if (name === '') throw new Error(`--hosts-entry: an empty host name in ${JSON.stringify(e)} (want IP=NAME[,NAME...])`);
      if (!NAME.test(name)) throw new Error(`--hosts-entry: ${JSON.stringify(name)} is not a host name`);
      if (!current.names.includes(name)) current.names.push(name);
    }
    out.hosts = 'flags';
  }
  return out;
}

const givesResolv = (f: DnsFlags) => f.dns.length > 0 || f.search.length > 0 || f.options.length > 0 || f.domain !== undefined;

/** Whether any --dns*, --hosts-entry flag was given. */
export const givesDns = (f: DnsFlags) => givesResolv(f) || f.hostsEntries.length > 0;

/**
 * run-prepared's flags over the pod's settings: the resolv.conf part when any
 * --dns* flag was given, the hosts part when --hosts-entry was (rkt's run-prepared
 * took the same flags). Throws as parseDnsFlags.
 */
export function overrideDns(base: PodDns, f: DnsFlags): PodDns {
  const given = parseDnsFlags(f);
  const out = { ...base };
  if (givesResolv(f)) {
    Object.assign(out, { resolv: given.resolv, nameservers: given.nameservers, search: given.search, options: given.options, domain: given.domain });
  }
  if (f.hostsEntries.length) Object.assign(out, { hosts: given.hosts, hostsEntries: given.hostsEntries });
  return out;
}

/**
 * The pod's resolv.conf and hosts are bound over each app's, never written into a
 * volume: --dns* or --hosts-entry with an app volume at /etc/resolv.conf, /etc/hosts
 * or a directory above them is a conflict (rkt let the flags win over the volume).
 * The one-line message and its hint, or undefined.
 */
export function dnsVolumeProblem(apps: ReadonlyArray<{ name: string; mounts?: Array<{ volume: string; path: string }> }>, dns: PodDns): { message: string; hint: string } | undefined {
  const files: Array<[string, string]> = [];
  if (dns.resolv === 'flags' || dns.resolv === 'host') files.push(['/etc/resolv.conf', dns.resolv === 'host' ? '--dns=host' : '--dns*']);
  if (dns.hosts !== 'default') files.push(['/etc/hosts', dns.hosts === 'host' ? '--hosts-entry=host' : '--hosts-entry']);
  for (const a of apps) {
    for (const m of a.mounts ?? []) {
      const hit = files.find(([file]) => volumeCovers(m.path, file));
      if (hit) return { message: `app ${a.name} mounts volume ${m.volume} at ${m.path}, where ${hit[1]} would put ${hit[0]}`, hint: `leave out ${hit[1]} or that mount` };
    }
  }
  return undefined;
}

/** Whether the settings are all defaults (then the pod has no `dns` file). */
export function isDefaultDns(d: PodDns): boolean {
  return d.resolv === 'default' && d.hosts === 'default';
}

/** The pod's `dns` file, or the defaults when it has none. Throws on a malformed one. */
export function readPodDns(podDir: string): PodDns {
  const file = path.join(podDir, POD_FILES.dns);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return DEFAULT_DNS;
    throw e;
  }
  const d = JSON.parse(text) as PodDns;
  const strings = (a: unknown) => Array.isArray(a) && a.every((s) => typeof s === 'string');
  if (
    !['default', 'flags', 'host', 'none'].includes(d.resolv) ||
    !['default', 'flags', 'host'].includes(d.hosts) ||
    !strings(d.nameservers) ||
    !strings(d.search) ||
    !strings(d.options) ||
    typeof d.domain !== 'string' ||
    !Array.isArray(d.hostsEntries) ||
    !d.hostsEntries.every((h) => h && typeof h.ip === 'string' && strings(h.names))
  ) {
    throw new Error(`${file}: malformed`);
  }
  return d;
}

/** The localhost lines every generated hosts file starts with (and the fallback of an image without one). */
export function hostsFallback(hostname: string): string {
  return `127.0.0.1 localhost localhost.domain localhost4 localhost4.localdomain4 ${hostname}\n::1 localhost localhost.domain localhost6 localhost6.localdomain6 ${hostname}\n`;
}

/** A resolv.conf; domain before search (the C libraries use the last of the two). */
export function resolvConfText(r: { nameservers: string[]; search: string[]; options: string[]; domain: string }): string {
  const lines = ['# Generated by tspod'];
  if (r.domain) lines.push(`domain ${r.domain}`);
  if (r.search.length) lines.push(`search ${r.search.join(' ')}`);
  for (const n of r.nameservers) lines.push(`nameserver ${n}`);
  if (r.options.length) lines.push(`options ${r.options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

export function hostsText(hostname: string, entries: HostsEntry[]): string {
  return hostsFallback(hostname) + entries.map((e) => `${e.ip} ${e.names.join(' ')}\n`).join('');
}

/**
 * The DNS data of the first network that returned some (in --net order), kept to
 * what a resolv.conf line can safely hold (a plugin's odd value is dropped), or
 * undefined when none did.
 */
export function networkResolv(networks: readonly NetworkDns[]): { network: string; text: string } | undefined {
  for (const n of networks) {
    const d = n.dns;
    if (!d) continue;
    const r = {
      nameservers: (d.nameservers ?? []).filter((s) => typeof s === 'string' && isIp(s)),
      search: (d.search ?? []).filter((s) => typeof s === 'string' && NAME.test(s)),
      options: (d.options ?? []).filter((s) => typeof s === 'string' && OPTION.test(s)),
      domain: typeof d.domain === 'string' && NAME.test(d.domain) ? d.domain : '',
    };
    if (r.nameservers.length || r.search.length || r.options.length || r.domain) return { network: n.name, text: resolvConfText(r) };
  }
  return undefined;
}

/** The host files `host` binds. */
export const HOST_RESOLV_CONF = '/etc/resolv.conf';
export const HOST_HOSTS = '/etc/hosts';

/**
 * What each app's /etc/resolv.conf and /etc/hosts are bound from: host paths
 * (the host's own file, or one stage1 wrote into the pod directory); undefined:
 * the image's file stays (hosts: or the localhost fallback).
 */
export interface EtcBinds {
  resolvConf?: string;
  hosts?: string;
}

/**
 * stage1: the pod's resolv.conf and hosts by its settings and its networks' DNS
 * data, written into the pod directory (temp name, then rename) when generated.
 * The host's files must be regular files (after the host's own symlinks, which
 * nothing of the pod can change).
 */
export function writeEtcFiles(podDir: string, dns: PodDns, networks: readonly NetworkDns[], hostname: string): EtcBinds {
  const out: EtcBinds = {};
  const write = (rel: string, text: string) => {
    const file = path.join(podDir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o750 });
    fs.writeFileSync(`${file}.tmp`, text, { mode: 0o644 });
    fs.chmodSync(`${file}.tmp`, 0o644);
    fs.renameSync(`${file}.tmp`, file);
    return file;
  };
  const hostFile = (file: string, flag: string) => {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch (e) {
      throw new Error(`${flag}: the host's ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!st.isFile()) throw new Error(`${flag}: the host's ${file} is not a regular file`);
    return file;
  };
  if (dns.resolv === 'host') {
    out.resolvConf = hostFile(HOST_RESOLV_CONF, '--dns=host');
  } else if (dns.resolv === 'flags') {
    out.resolvConf = write(POD_FILES.resolvConf, resolvConfText(dns));
  } else if (dns.resolv === 'default') {
    const fromNet = networkResolv(networks);
    if (fromNet) out.resolvConf = write(POD_FILES.resolvConf, fromNet.text);
  }
  if (dns.hosts === 'host') out.hosts = hostFile(HOST_HOSTS, '--hosts-entry=host');
  else if (dns.hosts === 'flags') out.hosts = write(POD_FILES.hosts, hostsText(hostname, dns.hostsEntries));
  return out;
}

/**
 * Whether an app's volume at `target` covers `file` (the file itself or a
 * directory above it): the pod's generated files never go into a volume.
 */
export function volumeCovers(target: string, file: string): boolean {
  const t = path.posix.normalize(target).replace(/\/+$/, '') || '/';
  return t === file || t === '/' || file.startsWith(`${t}/`);
}
