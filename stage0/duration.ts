// Go-style durations (30m, 24h, 1h30m), as rkt's flags take and print them.

/** Go-style durations in ms: "30m", "24h", "1h30m", "10s", "500ms", "0"; undefined: not one. */
export function parseGoDuration(s: string): number | undefined {
  const text = s.trim();
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/gy;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };
  let total = 0;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(text))) {
    total += Number(m[1]) * unit[m[2]];
    consumed = re.lastIndex;
  }
  return text && consumed === text.length ? total : undefined;
}

/** Go's Duration.String() for whole-second values: 30m0s, 24h0m0s. */
export function formatDuration(ms: number): string {
  let s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h) return `${h}h${m}m${s}s`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}
