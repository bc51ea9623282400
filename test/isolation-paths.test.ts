// Kernel paths and oom-score-adj (issue 10 items 3 and 4): os/linux/oom-score-adj
// and --oom-score-adj seen through run and enter; bad values refused at prepare.
// Needs root.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describeResult, makeDataDir, type DataDir, type RunResult } from './harness/index.js';
import { BUSYBOX, SKIP, podsTree, removeScratchDirs, withProbedPod } from './pods-util.js';

let dd: DataDir;

before(() => {
  if (SKIP) return;
  dd = makeDataDir(undefined, 'isolation-paths');
});
after(async () => {
  removeScratchDirs();
  if (dd) await dd.remove();
});

function failsWith(r: RunResult, line: RegExp): void {
  const lines = r.stderr.split('\n').filter((l) => l);
  assert.equal(r.code, 254, describeResult(r));
  assert.equal(lines.length, 1, describeResult(r));
  assert.match(lines[0].replace(/^tspod: /, ''), line, describeResult(r));
}

describe('oom-score-adj', { skip: SKIP }, () => {
  const extra = 'p oom "$(cat /proc/self/oom_score_adj)"';
  // Lowering it needs CAP_SYS_RESOURCE, which some test hosts (containers) lack.
  const canLower = (BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]}`) & (1n << 24n)) !== 0n;
  for (const v of ['500', '-200']) {
    test(`--oom-score-adj=${v}: run and enter`, { skip: v.startsWith('-') && !canLower ? 'no CAP_SYS_RESOURCE here' : false }, async () => {
      await withProbedPod(dd, { appFlags: [`--oom-score-adj=${v}`], extra }, async (pod) => {
        assert.equal(pod.run.get('oom'), v);
        assert.equal((await pod.enter(undefined, extra)).get('oom'), v);
      });
    });
  }

  test('bad values are refused at prepare: one line, exit 254, no pod', async () => {
    const before = podsTree(dd.path).filter((p) => !p.startsWith('prepare/'));
    for (const v of ['abc', '5000', '-1001', '1.5', '']) {
      failsWith(await dd.tspod(['prepare', BUSYBOX, `--oom-score-adj=${v}`]), /--oom-score-adj: .* is not an integer from -1000 to 1000/);
    }
    assert.deepEqual(podsTree(dd.path).filter((p) => !p.startsWith('prepare/')), before, 'no pod left behind');
  });
});
