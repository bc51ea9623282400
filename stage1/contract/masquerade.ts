// The default network's IP masquerade: one host-wide set of rules for its
// subnet, as podman and netavark keep one per network, instead of the ptp
// plugin's ipMasq (a chain and two rules per pod, made by 9 iptables processes
// at each ADD and removed by 6 at each DEL: most of a pod's network cost).
// stage1 /init makes sure of the rules while a pod of the network is being
// added, before its apps start (installed once: later pods find them); `tspod
// gc` removes them when no pod of any data directory holds an address in the
// network (no host-local lease is left).
//
// Two host-wide locks keep gc from removing the rules under a pod being added:
// a starting pod holds USERS_LOCK shared from before its check until its ADD
// has taken its address (and RULE_LOCK exclusively around an install, so that
// two pods never install twice); gc holds USERS_LOCK exclusively while it
// looks at the leases and removes the rules.
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { LOCK_EX, LOCK_SH, sys } from '../../native/sys.js';

/** A network whose pods are masqueraded by host-wide rules (not by their plugin's ipMasq). */
export interface HostMasquerade {
  /** The CNI network's name: host-local keeps its leases in LEASES_DIR/<name>. */
  network: string;
  subnet: string;
  /** The nat chain the POSTROUTING rule jumps to (≤ 28 characters). */
  chain: string;
}

export const DEFAULT_MASQUERADE: HostMasquerade = Object.freeze({ network: 'default', subnet: '172.16.28.0/24', chain: 'TSPOD-MASQ-DEFAULT' });

/** host-local's default data directory: one file per leased address, named by the address. */
export const LEASES_DIR = '/var/lib/cni/networks';
export const USERS_LOCK = '/run/tspod/masquerade.lock';
export const RULE_LOCK = '/run/tspod/masquerade-rule.lock';

/** The comment every rule of it carries (the test harness's leak check knows it as a host-wide rule). */
export function masqueradeComment(m: HostMasquerade): string {
  return `tspod: masquerade network ${m.network} (tspod gc removes it when no pod uses it)`;
}

/** POSTROUTING's jump for the network's sources (without -A/-C/-D). */
function jumpRule(m: HostMasquerade): string[] {
  return ['POSTROUTING', '-s', m.subnet, '-m', 'comment', '--comment', masqueradeComment(m), '-j', m.chain];
}

/**
 * The rules as iptables-restore --noflush input: the chain (declaring it makes
 * it or empties it) with the plugin's own two rules (the network itself is not
 * masqueraded, nor multicast), then the jump.
 */
export function masqueradeRestoreInput(m: HostMasquerade): string {
  const c = JSON.stringify(masqueradeComment(m));
  return [
    '*nat',
    `:${m.chain} - [0:0]`,
    `-A ${m.chain} -d ${m.subnet} -m comment --comment ${c} -j ACCEPT`,
    `-A ${m.chain} ! -d 224.0.0.0/4 -m comment --comment ${c} -j MASQUERADE`,
    `-A POSTROUTING -s ${m.subnet} -m comment --comment ${c} -j ${m.chain}`,
    'COMMIT',
    '',
  ].join('\n');
}

/** Runs iptables (or, with `input`, iptables-restore --noflush): its status (null if it could not run) and stderr. */
function iptables(args: string[], input?: string): { status: number | null; stderr: string } {
  const [cmd, argv] = input === undefined ? ['iptables', ['-w', ...args]] : ['iptables-restore', ['-w', '--noflush']];
  const r = spawnSync(cmd, argv, { input, encoding: 'utf8', stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'] });
  return { status: r.error ? null : r.status, stderr: (r.stderr || String(r.error ?? '')).trim() };
}

/** `iptables -C` of the jump, without blocking: whether the rules are there (false also when iptables cannot run). */
function jumpPresent(m: HostMasquerade): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('iptables', ['-w', '-t', 'nat', '-C', ...jumpRule(m)], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (status) => resolve(status === 0));
  });
}

function openLock(file: string): number {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  // Node opens close-on-exec: no plugin or helper inherits it.
  return fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
}

/** What holdHostMasquerade gives: the rules' check (or install), and the end of the hold. */
export interface MasqueradeHold {
  /** Resolves once the rules are there; rejects with an Error saying what failed. */
  ready: Promise<void>;
  /** Lets gc remove the rules again (once the pod's lease exists, or the pod is given up). */
  release(): void;
}

/**
 * Before a pod of the network is added: keeps gc from removing the rules until
 * `release`, and checks them in the background (`ready`), so that the check
 * (an iptables process) runs while the pod's network is being added rather
 * than before it. The check takes no lock (gc cannot remove the rules while
 * they are held); only an install does, RULE_LOCK around a second check and
 * the install, so that two pods never install twice.
 */
export function holdHostMasquerade(m: HostMasquerade): MasqueradeHold {
  const users = openLock(USERS_LOCK);
  try {
    sys().flock(users, LOCK_SH);
  } catch (e) {
    fs.closeSync(users);
    throw e;
  }
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    fs.closeSync(users);
  };
  // Not installed for a pod given up meanwhile (its ADD failed and it let go).
  const ready = jumpPresent(m).then((present) => {
    if (!present && held) installOnce(m);
  });
  // A pod whose ADD fails never awaits it: that must not end /init with an unhandled rejection.
  ready.catch(() => undefined);
  return { ready, release };
}

/** Installs the rules unless another pod did since the check (under RULE_LOCK). */
function installOnce(m: HostMasquerade): void {
  const rule = openLock(RULE_LOCK);
  try {
    sys().flock(rule, LOCK_EX);
    if (iptables(['-t', 'nat', '-C', ...jumpRule(m)]).status === 0) return;
    const r = iptables([], masqueradeRestoreInput(m));
    if (r.status !== 0) throw new Error(`network ${m.network}: iptables-restore cannot add the masquerade rules for ${m.subnet}: ${r.stderr || `exit ${r.status}`}`);
  } finally {
    fs.closeSync(rule);
  }
}

/** Whether a pod of any data directory holds an address of the network (host-local leases are files named by the address). */
export function networkInUse(m: HostMasquerade, leasesDir = LEASES_DIR): boolean {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(leasesDir, m.network));
  } catch {
    return false;
  }
  return names.some((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n) || n.includes(':'));
}

/**
 * tspod gc: removes the network's rules when no pod holds an address in it.
 * Returns what could not be removed (one line each); [] when done or kept.
 */
export function releaseUnusedMasquerade(m: HostMasquerade): string[] {
  let users: number;
  try {
    users = openLock(USERS_LOCK);
  } catch (e) {
    return [`${USERS_LOCK}: ${(e as Error).message}`];
  }
  try {
    sys().flock(users, LOCK_EX);
    if (networkInUse(m)) return [];
    const problems: string[] = [];
    // Every copy of the jump (one, unless someone added it by hand), then the chain.
    for (let i = 0; i < 16 && iptables(['-t', 'nat', '-C', ...jumpRule(m)]).status === 0; i++) {
      const r = iptables(['-t', 'nat', '-D', ...jumpRule(m)]);
      if (r.status === 0) continue;
      problems.push(`network ${m.network}: iptables cannot remove the masquerade rule: ${r.stderr}`);
      break;
    }
    if (iptables(['-t', 'nat', '-S', m.chain]).status === 0) {
      for (const op of ['-F', '-X']) {
        const r = iptables(['-t', 'nat', op, m.chain]);
        if (r.status !== 0) problems.push(`network ${m.network}: iptables ${op} ${m.chain}: ${r.stderr}`);
      }
    }
    return problems;
  } finally {
    fs.closeSync(users);
  }
}
