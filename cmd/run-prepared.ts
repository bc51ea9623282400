// `tspod run-prepared`: its flag table, read by the yargs command (cmd/pods.ts)
// and, without the argument library, by the fast path here: a pod's start time
// is this command's start-up time. A bad value is refused here as there; --help,
// an unknown flag or --uuid-file return undefined and the yargs command handles it.
import { requireRoot } from './require-root.js';
import { runPrepared } from '../stage0/run.js';
import { StorePaths } from '../store/paths.js';
import { insecureFrom, type GlobalArgs } from './global.js';
import { matchFlag, setFlag, type FlagTable, type FlagValues } from './flags.js';

export const RUN_PREPARED_FLAGS = {
  net: { kind: 'value', describe: 'default, default-restricted, host, none or NAME[:CNI_ARGS], comma-separated' },
  hostname: { kind: 'value', describe: 'the pod hostname (default tspod-<uuid>)' },
  interactive: { kind: 'bool', describe: 'pass the terminal through to the one app' },
  ipc: { kind: 'value', describe: "auto|private (an IPC namespace of its own) or parent (the host's)" },
  'mds-register': { kind: 'bool', describe: 'register the pod with the metadata service (tspod metadata-service)' },
  dns: { kind: 'list', describe: 'name servers (IP[,IP], repeatable), or host, or none: replaces what prepare stored' },
  'dns-search': { kind: 'list', describe: 'search domains (repeatable)' },
  'dns-opt': { kind: 'list', describe: 'resolver options (repeatable)' },
  'dns-domain': { kind: 'value', describe: 'the resolv.conf domain' },
  'hosts-entry': { kind: 'list', describe: 'IP=NAME[,NAME] (repeatable), or host: replaces what prepare stored' },
  'uuid-file': { kind: 'value', describe: 'read the pod UUID from this file' },
} as const satisfies FlagTable;

export type RunPreparedFlags = FlagValues<typeof RUN_PREPARED_FLAGS>;

/** The flags and the UUID, read by the table; undefined for anything the fast path leaves to yargs. */
export function parseRunPreparedFast(rest: readonly string[]): { uuid: string; flags: RunPreparedFlags } | undefined {
  const got: Record<string, string | boolean | string[]> = {};
  let uuid: string | undefined;
  for (let i = 0; i < rest.length; ) {
    const m = matchFlag(rest, i, RUN_PREPARED_FLAGS);
    if (m) {
      setFlag(got, m.name, RUN_PREPARED_FLAGS[m.name as keyof typeof RUN_PREPARED_FLAGS].kind, m.value);
      i = m.next;
      continue;
    }
    if (rest[i].startsWith('-') || uuid !== undefined) return undefined;
    uuid = rest[i++];
  }
  if (uuid === undefined || got['uuid-file'] !== undefined) return undefined;
  const list = (n: string) => (got[n] as string[] | undefined) ?? [];
  const flags: RunPreparedFlags = {
    net: got.net as string | undefined,
    hostname: got.hostname as string | undefined,
    interactive: got.interactive as boolean | undefined,
    ipc: got.ipc as string | undefined,
    'mds-register': got['mds-register'] as boolean | undefined,
    dns: list('dns'),
    'dns-search': list('dns-search'),
    'dns-opt': list('dns-opt'),
    'dns-domain': got['dns-domain'] as string | undefined,
    'hosts-entry': list('hosts-entry'),
    'uuid-file': undefined,
  };
  return { uuid, flags };
}

export function fastRunPrepared(rest: readonly string[], globals: GlobalArgs): number | undefined {
  const parsed = parseRunPreparedFast(rest);
  return parsed && startPrepared(parsed.uuid, parsed.flags, globals);
}

/** run-prepared's work, for both paths. */
export function startPrepared(uuid: string, f: RunPreparedFlags, globals: GlobalArgs): number {
  requireRoot('run-prepared');
  return runPrepared(new StorePaths(globals.dir).podsDir, uuid, {
    net: f.net,
    hostname: f.hostname,
    interactive: f.interactive,
    ipc: f.ipc,
    debug: globals.debug,
    insecure: insecureFrom(globals),
    localConfig: globals.localConfig,
    mdsRegister: f['mds-register'],
    dns: { dns: f.dns, search: f['dns-search'], options: f['dns-opt'], domain: f['dns-domain'], hostsEntries: f['hosts-entry'] },
  });
}
