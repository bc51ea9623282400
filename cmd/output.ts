// Formatting shared by the commands: rkt's tab-aligned tables, humanized sizes
// and times, and --format=json|json-pretty.

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

export const formatOption = {
  type: 'string' as const,
  default: 'tabbed',
  choices: ['tabbed', 'json', 'json-pretty'],
  describe: 'output format',
};

export function printJson(value: unknown, format: OutputFormat): void {
  process.stdout.write(`${format === 'json-pretty' ? JSON.stringify(value, null, '\t') : JSON.stringify(value)}\n`);
}

export { parseDuration, formatDuration } from '../stage0/duration.js';

/** How image IDs are shown: rkt shows 12 hex digits in lists and 32 after fetch. */
export function shortId(id: string, hexDigits: number): string {
  const dash = id.indexOf('-');
  return id.slice(0, dash + 1 + hexDigits);
}
