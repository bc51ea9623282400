// `tspod run-prepared` without the argument library: a pod's start time is
// this command's start-up time. Anything unusual (--help, unknown flags) returns
// undefined and the full CLI handles it.
import { requireRoot } from '../native/libc.js';
import { runPrepared } from '../stage0/run.js';
import { StorePaths } from '../store/paths.js';
import { insecureFrom, type GlobalArgs } from './global.js';
import type { DnsFlags } from '../stage1/contract/dns.js';

export function fastRunPrepared(rest: string[], globals: GlobalArgs): number | undefined {
  let uuid: string | undefined;
  const flags: { net?: string; hostname?: string; interactive?: boolean; uuidFile?: string; ipc?: string; mdsRegister?: boolean } = {};
  const dns: DnsFlags = { dns: [], search: [], options: [], hostsEntries: [] };
  const lists = { dns: dns.dns, 'dns-search': dns.search, 'dns-opt': dns.options, 'hosts-entry': dns.hostsEntries };
  for (let i = 0; i < rest.length; i++) {
    const m = /^--(net|hostname|interactive|uuid-file|debug|dir|ipc|local-config|mds-register|dns|dns-search|dns-opt|dns-domain|hosts-entry)(?:=(.*))?$/.exec(rest[i]);
    if (!m) {
      if (rest[i].startsWith('-') || uuid !== undefined) return undefined;
      uuid = rest[i];
      continue;
    }
    const value = () => m[2] ?? rest[++i];
    switch (m[1]) {
      case 'interactive':
        if (m[2] !== undefined && m[2] !== 'true' && m[2] !== 'false') return undefined;
        flags.interactive = m[2] !== 'false';
        break;
      case 'mds-register':
        if (m[2] !== undefined && m[2] !== 'true' && m[2] !== 'false') return undefined;
        flags.mdsRegister = m[2] !== 'false';
        break;
      case 'debug':
        globals.debug = m[2] !== 'false';
        break;
      case 'dir':
        globals.dir = value();
        break;
      case 'local-config':
        globals['local-config'] = value();
        break;
      case 'net':
        flags.net = value();
        break;
      case 'hostname':
        flags.hostname = value();
        break;
      case 'ipc':
        flags.ipc = value();
        break;
      case 'uuid-file':
        flags.uuidFile = value();
        break;
      case 'dns-domain':
        dns.domain = value();
        if (dns.domain === undefined) return undefined;
        break;
      default: {
        const v = value();
        if (v === undefined) return undefined; // a flag without its value: the full CLI says so
        lists[m[1] as keyof typeof lists].push(v);
      }
    }
  }
  if (flags.uuidFile !== undefined || uuid === undefined) return undefined;
  requireRoot('run-prepared');
  return runPrepared(new StorePaths(globals.dir).podsDir, uuid, { net: flags.net, hostname: flags.hostname, interactive: flags.interactive, ipc: flags.ipc, debug: globals.debug, insecure: insecureFrom(globals), localConfig: globals['local-config'], mdsRegister: flags.mdsRegister, dns });
}
