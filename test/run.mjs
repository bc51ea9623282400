#!/usr/bin/env node
// The test runner behind `make test` (make has already compiled everything).
//
//   node test/run.mjs [FILTER…]
//
// Runs node's test runner over build/test/**/*.test.js (not build/test/harness,
// build/test/bench or build/test/unit, which `make unit` runs; only files whose test/**/*.ts source still exists; with
// FILTERs, only files whose path contains one of them). Each run gets its own
// scratch root, test/data/run-<time>-<pid>, passed to the tests as
// TSPOD_TEST_ROOT. Afterwards it fails the run, with a list, if anything the
// tests started outlived them: mounts under test/data or /tmp/tspod-test*,
// processes running from there, new network namespaces, network links or
// tspod cgroups, new /tmp/tspod-test* entries, or leaks that harness teardowns
// recorded. It then cleans those up and removes the scratch root.
//
// Output: node's spec reporter on stdout (its summary lines), then the leak
// report, then one closing line `summary: N passed, N failed, N skipped`.
// Environment: TSPOD_TEST_TIMEOUT_MS (per test, default 600000),
// TSPOD_TEST_KEEP=1 keeps the scratch root.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(repo);

const leaksModule = path.join(repo, 'build/test/harness/leaks.js');
if (!fs.existsSync(leaksModule)) {
  console.error('test/run.mjs: build/test/harness/leaks.js is missing: run `make` first (make test does)');
  console.log('summary: 0 passed, 1 failed');
  process.exit(1);
}
const { takeSnapshot, findLeaks, cleanupLeaks, formatLeaks, newDataEntries } = await import(leaksModule);
const { removeTreeSafely } = await import(path.join(repo, 'build/test/harness/sys.js'));

function findTests() {
  const base = path.join(repo, 'build/test');
  if (!fs.existsSync(base)) return [];
  const out = [];
  for (const rel of fs.readdirSync(base, { recursive: true })) {
    const r = String(rel);
    if (!r.endsWith('.test.js')) continue;
    const top = r.split(path.sep)[0];
    if (top === 'harness' || top === 'bench' || top === 'unit') continue; // unit: `make unit`
    const src = path.join(repo, 'test', r.replace(/\.js$/, '.ts'));
    if (!fs.existsSync(src)) continue; // a stale build of a deleted test
    out.push(path.join('build/test', r));
  }
  return out.sort();
}

const filters = process.argv.slice(2);
const files = findTests().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`test/run.mjs: no test files${filters.length ? ` match ${filters.join(' ')}` : ' in build/test'}`);
  console.log('summary: 0 passed, 1 failed');
  process.exit(1);
}

// One test run at a time on a machine: the leak check below compares the whole
// host (links, network namespaces, /tmp entries) before and after, so a second
// run in parallel (another checkout of the project) would see this run's
// resources as its leaks, and clean them up under it. The run re-executes
// itself under flock(1) (util-linux), waiting for the other run to finish.
// A wrapper that already holds the lock (`flock FILE node test/run.mjs`) is one
// of this process's ancestors: the run goes on under its lock instead of
// waiting for itself.
const lockFile = fs.existsSync('/run/lock') ? '/run/lock/tspod-test-run.lock' : '/tmp/.tspod-test-run.lock';
function ancestorHoldsLock(file) {
  let ino;
  try {
    ino = fs.statSync(file).ino;
  } catch {
    return false;
  }
  const holders = new Set();
  for (const line of fs.readFileSync('/proc/locks', 'utf8').split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 17271 00:19:1234 0 EOF"
    const f = line.trim().split(/\s+/);
    const at = f.indexOf('FLOCK');
    if (at < 0 || f[at + 1] === '->') continue;
    if (Number(f[at + 4].split(':')[2]) === ino) holders.add(Number(f[at + 3]));
  }
  for (let pid = process.ppid; pid > 1; ) {
    if (holders.has(pid)) return true;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return false;
    }
  }
  return false;
}
if (process.env.TSPOD_TEST_RUN_LOCKED !== '1' && !ancestorHoldsLock(lockFile)) {
  const env = { ...process.env, TSPOD_TEST_RUN_LOCKED: '1' };
  const args = [lockFile, process.execPath, ...process.argv.slice(1)];
  const { spawnSync } = await import('node:child_process');
  if (spawnSync('flock', ['-n', lockFile, 'true']).status !== 0) console.error(`test/run.mjs: another test run holds ${lockFile}; waiting for it`);
  const locked = spawn('flock', args, { stdio: 'inherit', env });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => locked.kill(sig));
  const status = await new Promise((resolve) => locked.on('close', (c, s) => resolve(s ? 1 : c ?? 1)));
  process.exit(status);
}

const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
const root = path.join(repo, 'test/data', `run-${stamp}-${process.pid}`);
fs.mkdirSync(root, { recursive: true });
const tapPath = path.join(root, 'report.tap');
const before = takeSnapshot(root);

const timeout = process.env.TSPOD_TEST_TIMEOUT_MS ?? '600000';
const child = spawn(
  process.execPath,
  [
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapPath}`,
    `--test-timeout=${timeout}`,
    ...files,
  ],
  { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, TSPOD_TEST_ROOT: root } },
);
const forward = (sig) => () => child.kill(sig);
process.on('SIGINT', forward('SIGINT'));
process.on('SIGTERM', forward('SIGTERM'));
const [code, signal] = await new Promise((resolve) => child.on('close', (c, s) => resolve([c, s])));

// node's own counts, from the TAP copy of the report
const counts = { pass: 0, fail: 0, skipped: 0, cancelled: 0, todo: 0 };
let sawSummary = false;
try {
  for (const line of fs.readFileSync(tapPath, 'utf8').split('\n')) {
    const m = /^# (pass|fail|skipped|cancelled|todo) (\d+)$/.exec(line);
    if (m) {
      counts[m[1]] = Number(m[2]);
      sawSummary = true;
    }
  }
} catch {
  // no report: counted as a failure below
}

// Give teardown stragglers a moment before calling anything a leak.
let leaks = findLeaks(before);
for (let i = 0; i < 6 && leaks.some((l) => l.kind !== 'recorded'); i++) {
  await new Promise((r) => setTimeout(r, 500));
  leaks = findLeaks(before);
}

if (leaks.length) {
  console.log(`\n✖ ${leaks.length} thing(s) outlived the tests:\n${formatLeaks(leaks)}`);
  for (const note of cleanupLeaks(leaks, before)) console.log(`  cleanup: ${note}`);
} else {
  console.log('\n✔ leak check: no mounts, processes, network namespaces, links, packet-filter rules, CNI leases, cgroups or temp dirs outlived the tests');
}

const leftovers = newDataEntries(before, root);
if (leftovers.length) {
  const shown = leftovers.slice(0, 10).map((p) => path.relative(repo, p));
  console.log(`note: ${leftovers.length} new file(s)/dir(s) left in test/data by tests that do not use the harness's scratch root (not a failure): ${shown.join(' ')}${leftovers.length > 10 ? ' …' : ''}`);
}

if (process.env.TSPOD_TEST_KEEP === '1') {
  console.log(`scratch root kept: ${path.relative(repo, root)}`);
} else {
  try {
    removeTreeSafely(root);
  } catch (err) {
    console.log(`✖ ${err.message}`);
    leaks.push({ kind: 'mount', detail: String(err.message) });
  }
}

let failed = counts.fail + counts.cancelled;
if (!sawSummary || ((code !== 0 || signal) && failed === 0)) {
  console.log(`✖ node --test ${signal ? `was killed by ${signal}` : `exited ${code}`}${sawSummary ? '' : ' without a summary'}`);
  failed += 1;
}
if (leaks.length) failed += 1;
const skipped = counts.skipped + counts.todo;
console.log(`summary: ${counts.pass} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 && code === 0 ? 0 : 1);
