// Formatting shared by the commands: rkt's tab-aligned tables, humanized sizes
// and times, --format=json|json-pretty, --full and --no-legend; and how each
// command shows what it got from stage0 and store (rkt's shapes).
import type { PodStatus } from '../stage0/inspect.js';
import type { PodStats } from '../stage0/resources.js';
import type { StoredImage } from '../store/images.js';
import { networksJson, networksText } from '../stage1/contract/networks.js';
import type { FlagSpec } from './flags.js';

/**
 * Lays out rows like Go's text/tabwriter with padding 1 and a tab as the pad
 * character (what rkt's tables use): each cell is followed by enough tabs to
 * reach its column's width, rounded up to a multiple of 8.
 */
export function tabulate(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i < row.length - 1) widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  const lines = rows.map((row) =>
    row
      .map((cell, i) => {
        if (i === row.length - 1) return cell;
        const width = Math.ceil((widths[i] + 1) / 8) * 8;
        return cell + '\t'.repeat(Math.ceil((width - cell.length) / 8));
      })
      .join(''),
  );
  return lines.map((l) => `${l}\n`).join('');
}

const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB" (go-humanize IBytes style). */
export function humanBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1024)), IEC.length - 1);
  const v = n / 1024 ** e;
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${IEC[e]}`;
}

/** "2 minutes ago" (go-humanize Time style). */
export function humanTime(ms: number, now = Date.now()): string {
  const diff = (now - ms) / 1000;
  const future = diff < 0;
  const s = Math.abs(diff);
  const word = future ? 'from now' : 'ago';
  const steps: Array<[number, string, number]> = [
    [1, 'now', 0],
    [2, '1 second', 0],
    [60, 'seconds', 1],
    [120, '1 minute', 0],
    [3600, 'minutes', 60],
    [7200, '1 hour', 0],
    [86400, 'hours', 3600],
    [172800, '1 day', 0],
    [604800, 'days', 86400],
    [1209600, '1 week', 0],
    [2628000, 'weeks', 604800],
    [5256000, '1 month', 0],
    [31536000, 'months', 2628000],
    [63072000, '1 year', 0],
  ];
  for (const [limit, label, div] of steps) {
    if (s < limit) {
      if (label === 'now') return 'now';
      return div ? `${Math.floor(s / div)} ${label} ${word}` : `${label} ${word}`;
    }
  }
  return `${Math.floor(s / 31536000)} years ${word}`;
}

/** rkt's full time layout: `2006-01-02 15:04:05.999 -0700 MST` (in local time). */
export function fullTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const frac = d.getMilliseconds() ? `.${pad(d.getMilliseconds(), 3).replace(/0+$/, '')}` : '';
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const zone = Intl.DateTimeFormat('en-US', { timeZoneName: 'short' })
    .formatToParts(d)
    .find((p) => p.type === 'timeZoneName')?.value;
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${frac} ` +
    `${sign}${pad(Math.floor(Math.abs(off) / 60))}${pad(Math.abs(off) % 60)} ${zone === 'GMT' ? 'UTC' : zone}`
  );
}

export type OutputFormat = 'tabbed' | 'json' | 'json-pretty';

/** --format, as list, status, stats and image list take it. */
export const FORMAT_FLAG = { kind: 'value', default: 'tabbed', choices: ['tabbed', 'json', 'json-pretty'], describe: 'output format' } as const satisfies FlagSpec;
/** --full and --no-legend (yargs reads --no-X as X=false, so the flag is `legend`). */
export const FULL_FLAG = { kind: 'bool', default: false, describe: 'full IDs, exact times' } as const satisfies FlagSpec;
export const LEGEND_FLAG = { kind: 'bool', default: true, describe: 'column headers (--no-legend: none)' } as const satisfies FlagSpec;

/** Prints a command's result in the chosen format: the JSON value, or the text (tabbed). */
export function printAs(format: string, json: () => unknown, text: () => string): void {
  if (format === 'json') process.stdout.write(`${JSON.stringify(json())}\n`);
  else if (format === 'json-pretty') process.stdout.write(`${JSON.stringify(json(), null, '\t')}\n`);
  else process.stdout.write(text());
}

/** A table with its header row unless --no-legend. */
export function table(head: string[], rows: string[][], legend: boolean): string {
  return tabulate(legend ? [head, ...rows] : rows);
}

export { formatDuration } from '../stage0/duration.js';


/** How image IDs are shown: rkt shows 12 hex digits in lists and 32 after fetch. */
export function shortId(id: string, hexDigits: number): string {
  const dash = id.indexOf('-');
  return id.slice(0, dash + 1 + hexDigits);
}

/** rkt's JSON shape for a pod (api/v1). */
export function podJson(s: PodStatus): unknown {
  const sec = (ms?: number) => (ms === undefined ? 0 : Math.floor(ms / 1000));
  const ns = (ms?: number) => (ms === undefined ? 0 : Math.round(ms * 1e6));
  return {
    name: s.uuid,
    state: s.paused ? 'paused' : s.state,
    networks: networksJson(s.networks),
    app_names: s.apps.map((a) => a.name),
    apps: s.apps.map((a) => ({
      name: a.name,
      state: s.state === 'running' ? (s.paused ? 'paused' : 'running') : a.exitCode !== undefined ? 'exited' : s.exited ? 'unknown' : 'created',
      created_at: ns(s.createdAt),
      started_at: ns(a.startedAt),
      finished_at: a.exitCode !== undefined ? ns(a.finishedAt) : 0,
      exit_code: a.exitCode ?? 0,
      ...(a.oomKilled ? { oom_killed: true, reason: 'oom-killed' } : {}),
      // beyond rkt's shape: the app's cgroup limits (null: none)
      ...(a.limits
        ? { limits: { memory_bytes: a.limits.memory ?? null, cpu_millis: a.limits.cpuMillis ?? null, cpu_shares: a.limits.cpuShares ?? null, pids: a.limits.pids ?? null } }
        : {}),
      image_id: a.imageId,
      mounts: [],
      user_annotations: {},
      user_labels: {},
      // beyond rkt's shape, once the pod has started: the seccomp filter the app got and
      // its device cgroup's allow list (null: none)
      ...(a.security
        ? {
            seccomp: a.security.seccomp ? { mode: a.security.seccomp.mode, errno: a.security.seccomp.errno, syscalls: a.security.seccomp.syscalls } : null,
            device_rules: a.security.devices ?? null,
          }
        : {}),
    })),
    created_at: sec(s.createdAt),
    started_at: sec(s.startedAt),
    user_annotations: s.manifest?.userAnnotations ?? {},
    user_labels: s.manifest?.userLabels ?? {},
    ...(s.ipc ? { ipc: s.ipc } : {}),
    ...(s.userNamespace ? { user_namespace: { uid_map: s.userNamespace.uidMap, gid_map: s.userNamespace.gidMap } } : {}),
    // beyond rkt's shape: --dns*, --hosts-entry, and where the apps' resolv.conf came from once started
    ...(s.dns
      ? {
          dns: {
            resolv_conf: s.dns.resolv,
            nameservers: s.dns.nameservers,
            search: s.dns.search,
            options: s.dns.options,
            domain: s.dns.domain,
            hosts: s.dns.hosts,
            hosts_entries: s.dns.hostsEntries.map((h) => ({ ip: h.ip, hostnames: h.names })),
            ...(s.resolvConfFrom ? { resolv_conf_from: s.resolvConfFrom } : {}),
          },
        }
      : {}),
  };
}

/** Bytes as podman shows them: 1.5MiB. */
function iec(n?: number): string {
  if (n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v}${units[i]}`;
}

/** `tspod status`'s lines (rkt's). */
export function statusText(status: PodStatus): string {
  const lines = [`state=${status.paused ? 'paused' : status.state}`];
  if (status.createdAt !== undefined) lines.push(`created=${fullTime(status.createdAt)}`);
  if (status.startedAt !== undefined) lines.push(`started=${fullTime(status.startedAt)}`);
  if (status.state === 'running' || status.exited) lines.push(`networks=${networksText(status.networks)}`);
  if (status.pid !== undefined) lines.push(`pid=${status.pid}`);
  lines.push(`exited=${status.exited}`);
  if (status.state !== 'running') for (const app of status.apps) if (app.exitCode !== undefined) lines.push(`app-${app.name}=${app.exitCode}`);
  const oom = status.apps.filter((app) => app.oomKilled).map((app) => app.name);
  if (oom.length) lines.push(`oom-killed=${oom.join(',')}`);
  return `${lines.join('\n')}\n`;
}

/** `tspod list`'s table: one row per app, the pod's cells on its first row only (rkt's). */
export function podListText(statuses: readonly PodStatus[], full: boolean, legend: boolean): string {
  const time = (ms?: number) => (ms === undefined ? '-' : full ? fullTime(ms) : humanTime(ms));
  const head = ['UUID', 'APP', 'IMAGE NAME', ...(full ? ['IMAGE ID'] : []), 'STATE', 'CREATED', 'STARTED', 'NETWORKS'];
  const rows: string[][] = [];
  for (const s of statuses) {
    const uuid = full ? s.uuid : s.uuid.slice(0, 8);
    const podCells = [s.paused ? 'paused' : s.state, time(s.createdAt), time(s.startedAt), networksText(s.networks)];
    const apps = s.apps.length ? s.apps : [{ name: '-', imageName: '-', imageId: '-' }];
    apps.forEach((app, i) => {
      const imageId = full ? [app.imageId === '-' ? '-' : shortId(app.imageId, 12)] : [];
      rows.push(i === 0 ? [uuid, app.name, app.imageName ?? '-', ...imageId, ...podCells] : ['', app.name, app.imageName ?? '-', ...imageId, '', '', '', '']);
    });
  }
  return table(head, rows, legend);
}

export function statsJson(s: PodStats): unknown {
  return {
    uuid: s.uuid,
    apps: s.apps.map((x) => ({
      name: x.name,
      cpu_ns: x.cpuNs ?? null,
      memory_bytes: x.memoryBytes ?? null,
      memory_peak_bytes: x.memoryPeakBytes ?? null,
      memory_limit_bytes: x.memoryLimitBytes ?? null,
      pids: x.pids ?? null,
      pids_limit: x.pidsLimit ?? null,
      oom_kills: x.oomKills ?? null,
    })),
    network: s.network,
    interfaces: s.interfaces.map((i) => ({ name: i.name, rx_bytes: i.rxBytes, tx_bytes: i.txBytes, rx_packets: i.rxPackets, tx_packets: i.txPackets })),
  };
}

/** `tspod stats`: the apps' table, then the interfaces'. */
export function statsText(s: PodStats): string {
  const rows = s.apps.map((x) => [
    x.name,
    x.cpuNs === undefined ? '-' : `${(x.cpuNs / 1e9).toFixed(3)}s`,
    iec(x.memoryBytes),
    iec(x.memoryPeakBytes),
    x.memoryLimitBytes === undefined ? '-' : iec(x.memoryLimitBytes),
    x.pids === undefined ? '-' : String(x.pids),
    x.pidsLimit === undefined ? '-' : String(x.pidsLimit),
  ]);
  const apps = table(['APP', 'CPU TIME', 'MEM', 'MEM PEAK', 'MEM LIMIT', 'PIDS', 'PIDS LIMIT'], rows, true);
  const netHead = [s.network === 'host' ? "INTERFACE (host network: the host's counters)" : 'INTERFACE', 'RX BYTES', 'TX BYTES', 'RX PACKETS', 'TX PACKETS'];
  const net = s.interfaces.map((i) => [i.name, String(i.rxBytes), String(i.txBytes), String(i.rxPackets), String(i.txPackets)]);
  return `${apps}\n${table(netHead, net, true)}`;
}

export const IMAGE_LIST_FIELDS = ['id', 'name', 'size', 'importtime', 'lastused'] as const;
export type ImageListField = (typeof IMAGE_LIST_FIELDS)[number];
const IMAGE_FIELD_TITLES: Record<ImageListField, string> = { id: 'ID', name: 'NAME', size: 'SIZE', importtime: 'IMPORT TIME', lastused: 'LAST USED' };

export function imageName(img: StoredImage): string {
  return img.names[0] ?? img.manifest.name;
}

/** An image's value of a list field: what `image list` sorts by. */
export function imageField(img: StoredImage, f: ImageListField): string | number {
  switch (f) {
    case 'id':
      return img.record.id;
    case 'name':
      return imageName(img);
    case 'size':
      return img.record.size;
    case 'importtime':
      return img.record.importTime;
    case 'lastused':
      return img.lastUsed;
  }
}

export function imageListJson(images: readonly StoredImage[]): unknown {
  return images.map((img) => ({
    id: img.record.id,
    name: imageName(img),
    import_time: img.record.importTime * 1e6,
    last_used_time: Math.round(img.lastUsed) * 1e6,
    size: img.record.size,
  }));
}

/** `tspod image list`'s table (rkt's columns; --full: whole IDs, sizes in bytes, exact times). */
export function imageListText(images: readonly StoredImage[], fields: readonly ImageListField[], full: boolean, legend: boolean): string {
  const cell = (img: StoredImage, f: ImageListField): string => {
    const v = imageField(img, f);
    if (f === 'id') return full ? String(v) : shortId(String(v), 12);
    if (f === 'size') return full ? String(v) : humanBytes(Number(v));
    if (f === 'importtime' || f === 'lastused') return full ? fullTime(Number(v)) : humanTime(Number(v));
    return String(v);
  };
  return table(fields.map((f) => IMAGE_FIELD_TITLES[f]), images.map((img) => fields.map((f) => cell(img, f))), legend);
}
