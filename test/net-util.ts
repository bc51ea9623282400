// Shared by the network tests (test/network-*.test.ts): a client network
// namespace that stands for another host, joined to the host by a veth on a /30
// of the test's own, with forwarding let through where the host drops it.
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';

/** Runs a command, insisting on exit 0; its stdout. */
export function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

export interface ClientNetns {
  /** The namespace's name (`ip netns`); its interface is eth0. */
  ns: string;
  /** The host end of the veth. */
  hostVeth: string;
  hostIp: string;
  clientIp: string;
}

/**
 * Makes the client namespace: `ip netns add`, the veth with hostIp/30 on the
 * host and clientIp/30 on its eth0, lo up; ip_forward on and, on a host whose
 * FORWARD policy drops, ACCEPT rules for the veth and the default network's
 * pods. Everything it does is undone by `restore` (run it in reverse).
 */
export function makeClientNetns(c: ClientNetns, restore: Array<() => void>): void {
  sh('ip', ['netns', 'add', c.ns]);
  restore.push(() => spawnSync('ip', ['netns', 'delete', c.ns]));
  sh('ip', ['link', 'add', c.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c.ns]);
  restore.push(() => spawnSync('ip', ['link', 'delete', c.hostVeth]));
  sh('ip', ['addr', 'add', `${c.hostIp}/30`, 'dev', c.hostVeth]);
  sh('ip', ['link', 'set', c.hostVeth, 'up']);
  sh('ip', ['netns', 'exec', c.ns, 'ip', 'addr', 'add', `${c.clientIp}/30`, 'dev', 'eth0']);
  sh('ip', ['netns', 'exec', c.ns, 'ip', 'link', 'set', 'eth0', 'up']);
  sh('ip', ['netns', 'exec', c.ns, 'ip', 'link', 'set', 'lo', 'up']);
  // Forwarding between the pods' veths and the client's (restored afterwards).
  const fwd = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  if (fwd !== '1') {
    fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
    restore.push(() => fs.writeFileSync('/proc/sys/net/ipv4/ip_forward', fwd));
  }
  if (/^-P FORWARD (DROP|REJECT)/m.test(sh('iptables', ['-S', 'FORWARD']))) {
    for (const rule of [['-i', c.hostVeth], ['-o', c.hostVeth], ['-s', '172.16.28.0/24']]) {
      sh('iptables', ['-I', 'FORWARD', ...rule, '-j', 'ACCEPT']);
      restore.push(() => spawnSync('iptables', ['-D', 'FORWARD', ...rule, '-j', 'ACCEPT']));
    }
  }
}
