// The service's TCP sockets. The default addresses include the host side of the
// default networks (172.16.28.1, 172.17.0.1), which exist only while some pod's
// ptp veth holds them: the sockets are bound with IP_FREEBIND, so that the bind
// succeeds before the address exists and connections arrive as soon as a pod's
// veth brings it up. Nothing listens on 0.0.0.0, and no address is added to the
// host for the service's sake.
import fs from 'node:fs';
import net from 'node:net';
import { TspodError, ErrorCode } from '../../native/errors.js';
import { AF_INET, AF_INET6, IP_FREEBIND, SO_REUSEADDR, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, SOL_IP, SOL_SOCKET, SyscallError, sys } from '../../native/sys.js';

function sockaddr(address: string, port: number): Buffer {
  if (net.isIPv4(address)) {
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(AF_INET, 0);
    sa.writeUInt16BE(port, 2);
    address.split('.').forEach((o, i) => sa.writeUInt8(Number(o), 4 + i));
    return sa;
  }
  const sa = Buffer.alloc(28);
  sa.writeUInt16LE(AF_INET6, 0);
  sa.writeUInt16BE(port, 2);
  ipv6Bytes(address).copy(sa, 8);
  return sa;
}

/** The 16 bytes of an IPv6 literal (with ::, and a dotted IPv4 tail). */
export function ipv6Bytes(address: string): Buffer {
  let a = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const o = v4[1].split('.').map(Number);
    a = `${a.slice(0, v4.index)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** A TCP socket bound (IP_FREEBIND) to address:port, for server.listen({fd}). */
export function boundSocket(address: string, port: number): number {
  if (!net.isIP(address)) throw new TspodError(ErrorCode.BadInput, `--listen-address=${address}: not an IP address`);
  const fd = sys().socket(net.isIPv4(address) ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK);
  try {
    const one = Buffer.alloc(4);
    one.writeInt32LE(1);
    sys().setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one);
    sys().setsockopt(fd, SOL_IP, IP_FREEBIND, one);
    sys().bind(fd, sockaddr(address, port));
    return fd;
  } catch (e) {
    fs.closeSync(fd);
    if (e instanceof SyscallError && e.code === 'EADDRINUSE') {
      throw new TspodError(ErrorCode.Conflict, `metadata service: ${address} port ${port} is already in use`, { hint: 'stop what listens there, or choose --listen-port' });
    }
    throw new TspodError(ErrorCode.System, `metadata service: cannot bind ${address} port ${port}: ${(e as Error).message}`);
  }
}
