// Terminal injection (issue 6.6): `run --interactive` and `enter` on a terminal give
// the pod a pseudo-terminal of its own, relayed by the host side, so TIOCSTI from
// inside the pod can never type into the caller's shell. Each test runs a real
// interactive shell (`sh -i` under script(1)) as the caller, runs tspod from it, and
// checks what the pod sees (its own terminal, the typed input, window-size changes)
// and that a TIOCSTI attempt (a static C program bound in through a volume) does not
// make the caller's shell run anything. Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeDataDir, REPO_ROOT, TSPOD_BIN, type DataDir } from './harness/index.js';
import { BUSYBOX, SKIP as PODS_SKIP, ok, removeScratchDirs, scratchDir, startTspod, stopAndWait, waitFor } from './pods-util.js';

const hasTools = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status === 0;
const SKIP = PODS_SKIP || (!hasTools && 'needs script(1) and gcc');

/** Pushes argv[1] into the terminal's input queue with TIOCSTI, through fds 0-2 and /dev/tty. */
const TIOCSTI_C = `
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
int main(int argc, char **argv) {
  const char *s = argc > 1 ? argv[1] : "";
  int fds[4] = { 0, 1, 2, open("/dev/tty", O_RDWR) };
  const char *names[4] = { "fd0", "fd1", "fd2", "dev-tty" };
  for (int i = 0; i < 4; i++) {
    if (fds[i] < 0) { fprintf(stderr, "tiocsti-%s=cannot-open\\n", names[i]); continue; }
    int ok = 1;
    for (const char *c = s; *c && ok; c++) if (ioctl(fds[i], TIOCSTI, c) < 0) ok = 0;
    fprintf(stderr, "tiocsti-%s=%s\\n", names[i], ok ? "ok" : strerror(errno));
  }
  return 0;
}
`;

let dd: DataDir;
let bin = ''; // host directory with the static tiocsti program, a volume at /x

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'sec-tty');
  bin = scratchDir('sec-tty-bin');
  fs.writeFileSync(path.join(bin, 'tiocsti.c'), TIOCSTI_C);
  const cc = spawnSync('gcc', ['-static', '-O2', '-o', path.join(bin, 'tiocsti'), path.join(bin, 'tiocsti.c')], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

/** An interactive shell on a terminal of script(1)'s: the caller. */
interface Caller {
  proc: ChildProcessWithoutNullStreams;
  out(): string;
  type(text: string): void;
  waitFor(re: RegExp, what: string): Promise<RegExpExecArray>;
  done: Promise<number | null>;
}

function caller(): Caller {
  const env: NodeJS.ProcessEnv = { PATH: `${process.env.PATH ?? '/usr/bin:/bin'}:${path.dirname(process.execPath)}`, TERM: 'dumb', PS1: '$ ', HOME: dd.path };
  const proc = spawn('script', ['-qfec', 'sh -i', '/dev/null'], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const done = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  let closed = false;
  void done.then(() => (closed = true));
  return {
    proc,
    out: () => out,
    type: (text) => proc.stdin.write(text),
    waitFor: async (re, what) => {
      try {
        return await waitFor(() => {
          const m = re.exec(out);
          if (m) return m;
          if (closed) throw new Error('the caller’s shell exited');
          return undefined;
        }, what, 60_000);
      } catch (e) {
        throw new Error(`${(e as Error).message} (waiting for ${what})\n--- terminal\n${out}`);
      }
    },
    done,
  };
}

/** Ends the caller's shell (and what runs in it) whatever happened. */
async function finish(c: Caller): Promise<void> {
  if (c.proc.exitCode === null && c.proc.signalCode === null) {
    c.type('\nexit\n');
    const t = setTimeout(() => c.proc.kill('SIGKILL'), 10_000);
    await c.done;
    clearTimeout(t);
  }
}

/**
 * The pod's side: its terminal's device, the typed line, the window size once it
 * changed to 33x77, then the TIOCSTI attempt at the caller's shell, then `exit CODE`.
 */
function podScript(canary: string, code: number): string {
  return [
    'echo "pod-tty=$(stat -L -c %t:%T /proc/self/fd/0) $(readlink /proc/self/fd/0) $(tty)"',
    'echo pod-ready',
    'read line',
    'echo "pod-got:$line"',
    'n=0; s=$(stty size); while [ "$s" != "33 77" ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); s=$(stty size); done',
    'echo "pod-size:$s"',
    `/x/tiocsti "touch ${canary}
"`,
    `exit ${code}`,
  ].join('\n');
}

/** Drives the caller through podScript: types the line, resizes the caller's terminal. */
async function drive(c: Caller, callerPts: string): Promise<void> {
  await c.waitFor(/^pod-ready\r?$/m, 'the pod on its terminal');
  // A resize of the caller's terminal (as a terminal emulator does): SIGWINCH to its
  // foreground job, tspod, which passes the size on to the pod's terminal.
  const r = spawnSync('stty', ['-F', callerPts, 'rows', '33', 'cols', '77'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  c.type('typed-input\n');
  await c.waitFor(/pod-size:.*\r?\n/, 'the new size in the pod');
}

/** The pod saw a terminal that is not the caller's, named `name` there; typed input, size. */
function assertPodSide(out: string, callerTty: string, name: RegExp): void {
  const m = /pod-tty=(\w+:\w+) (\S*) (.*?)\r?\n/.exec(out);
  assert.ok(m, out);
  assert.notEqual(m[1], callerTty, `the pod's terminal is not the caller's (${callerTty}):\n${out}`);
  assert.match(m[2], name, `readlink /proc/self/fd/0 in the pod:\n${out}`);
  assert.match(m[3], name, `tty(1) in the pod:\n${out}`);
  assert.match(out, /pod-got:typed-input/, 'typed input reaches the pod, its output comes back');
  assert.match(out, /pod-size:33 77/, 'the window size change reaches the pod');
  assert.match(out, /tiocsti-fd0=ok/, 'TIOCSTI itself worked, on the pod’s own terminal');
}

describe('terminal injection', { skip: SKIP, concurrency: true }, () => {
  test('run --interactive: the app gets a pty of its own; TIOCSTI cannot reach the caller’s shell', async () => {
    const canary = path.join(scratchDir('sec-tty-run'), 'canary');
    const c = caller();
    try {
      c.type('echo "caller-tty=$(stat -L -c %t:%T /proc/self/fd/0) caller-pts=$(tty)"\n');
      const [, callerTty, callerPts] = await c.waitFor(/caller-tty=(\w+:\w+) caller-pts=(\/dev\/\S+?)\r?\n/, 'the caller’s terminal');
      const podArgs = [
        `--dir=${dd.path}`, 'run', '--interactive', `--volume=x,kind=host,source=${bin},readOnly=true`,
        BUSYBOX, '--mount', 'volume=x,target=/x', '--exec', '/bin/sh', '--', '-c', podScript(canary, 3),
      ];
      c.type(`${[TSPOD_BIN, ...podArgs].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')}; echo "pod-exit=$?"\n`);
      await drive(c, callerPts);
      await c.waitFor(/pod-exit=\d+\r?\n/, 'the pod to exit');
      // Whatever the pod pushed into the caller's terminal would be read by the shell now.
      c.type('echo caller-alive-$((40+2))\n');
      await c.waitFor(/caller-alive-42/, 'the caller’s shell');
      c.type('exit\n');
      assert.equal(await c.done, 0, c.out());
      assertPodSide(c.out(), callerTty, /^\/dev\/console$/);
      assert.match(c.out(), /pod-exit=3\r?\n/, 'the exit code passes through');
      assert.equal(fs.existsSync(canary), false, `the injected command did not run on the host:\n${c.out()}`);
    } finally {
      await finish(c);
    }
  });

  test('enter: the command gets a pty of its own; TIOCSTI cannot reach the caller’s shell', async () => {
    const canary = path.join(scratchDir('sec-tty-enter'), 'canary');
    const uuidFile = path.join(dd.path, 'uuid-sec-tty-enter');
    const pod = startTspod(dd, [
      'run', `--uuid-file-save=${uuidFile}`, `--volume=x,kind=host,source=${bin},readOnly=true`,
      BUSYBOX, '--mount', 'volume=x,target=/x', '--exec', '/bin/sh', '--', '-c', 'echo ready; exec sleep 3600',
    ]);
    const c = caller();
    let uuid: string | undefined;
    try {
      await pod.waitOutput(/^ready$/m);
      uuid = fs.readFileSync(uuidFile, 'utf8').trim();
      await waitFor(async () => /^pid=\d+$/m.test((await ok(dd, ['status', uuid!])).stdout), 'the pod pid');
      c.type('echo "caller-tty=$(stat -L -c %t:%T /proc/self/fd/0) caller-pts=$(tty)"\n');
      const [, callerTty, callerPts] = await c.waitFor(/caller-tty=(\w+:\w+) caller-pts=(\/dev\/\S+?)\r?\n/, 'the caller’s terminal');
      const args = [`--dir=${dd.path}`, 'enter', uuid, '/bin/sh', '-c', podScript(canary, 5)];
      c.type(`${[TSPOD_BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')}; echo "pod-exit=$?"\n`);
      await drive(c, callerPts);
      await c.waitFor(/pod-exit=\d+\r?\n/, 'enter to return');
      c.type('echo caller-alive-$((40+2))\n');
      await c.waitFor(/caller-alive-42/, 'the caller’s shell');
      c.type('exit\n');
      assert.equal(await c.done, 0, c.out());
      assertPodSide(c.out(), callerTty, /^\/dev\/pts\/\d+$/); // the pod's own devpts
      assert.match(c.out(), /pod-exit=5\r?\n/, 'the exit code passes through');
      assert.equal(fs.existsSync(canary), false, `the injected command did not run on the host:\n${c.out()}`);
    } finally {
      await finish(c);
      await stopAndWait(dd, pod, uuid);
    }
  });
});
