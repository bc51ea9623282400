// Live per-layer progress for `fetch` on a terminal (stderr): bytes received, total
// and rate, redrawn in place. Off a terminal nothing is drawn.
import type { Progress } from '../store/progress.js';
import { humanBytes } from './output.js';

interface Row {
  label: string;
  total: number;
  received: number;
  started: number;
  state: 'downloading' | 'stored' | 'present' | 'failed';
}

export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): Progress | undefined {
  if (!stream.isTTY) return undefined;
  const rows = new Map<string, Row>();
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;

  const line = (r: Row): string => {
    const secs = Math.max((Date.now() - r.started) / 1000, 0.001);
    const total = r.total >= 0 ? ` / ${humanBytes(r.total)}` : '';
    switch (r.state) {
      case 'present':
        return `${r.label}: already in the store`;
      case 'failed':
        return `${r.label}: failed`;
      case 'stored':
        return `${r.label}: done ${humanBytes(r.received)} in ${secs.toFixed(1)}s`;
      default:
        return `${r.label}: ${humanBytes(r.received)}${total}  ${humanBytes(Math.round(r.received / secs))}/s`;
    }
  };
  const draw = () => {
    let out = drawn ? `\x1b[${drawn}A` : '';
    for (const r of rows.values()) out += `\x1b[2K${line(r)}\n`;
    drawn = rows.size;
    stream.write(out);
  };
  const schedule = () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      draw();
    }, 100);
  };
  return {
    start(key, label, total) {
      rows.set(key, { label, total, received: 0, started: Date.now(), state: 'downloading' });
      schedule();
    },
    update(key, received) {
      const r = rows.get(key);
      if (r) r.received = received;
      schedule();
    },
    done(key, outcome) {
      const r = rows.get(key);
      if (r) r.state = outcome;
      else rows.set(key, { label: key.slice(7, 19), total: -1, received: 0, started: Date.now(), state: outcome });
      if (timer) clearTimeout(timer);
      timer = undefined;
      draw();
    },
  };
}
