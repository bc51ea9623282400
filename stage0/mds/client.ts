// stage0's side of the registration protocol (protocol.ts). Synchronous: stage0
// registers right before it execs stage1 and unregisters inside gc's sweep, both
// synchronous code paths, so this speaks HTTP/1.0 over a blocking unix socket
// (socket/connect through sys(), read/write through fs) with a timeout.
import fs from 'node:fs';
import path from 'node:path';
import { TspodError, ErrorCode } from '../../native/errors.js';
import { AF_UNIX, SO_RCVTIMEO, SO_SNDTIMEO, SOCK_CLOEXEC, SOCK_STREAM, SOL_SOCKET, SyscallError, sys } from '../../native/sys.js';
import type { AppcImageManifest } from '../../stage1/contract/appc.js';
import { readMdsRegistration, writeMdsRegistration, type MdsRegistration } from '../../stage1/contract/mds.js';
import { POD_FILES, type PodManifest } from '../../stage1/contract/pod.js';
import type { Pod } from '../pods.js';
import { mdsSocketPath, type MdsPodRecord } from './protocol.js';

const TIMEOUT_S = 10;
const NO_SERVICE = '--mds-register: no metadata service is running; start `tspod metadata-service`';

interface Reply {
  status: number;
  body: string;
}

function sockaddrUn(file: string): Buffer {
  const name = Buffer.from(file);
  if (name.length > 107) throw new TspodError(ErrorCode.BadInput, `metadata service socket path too long: ${file}`);
  const sa = Buffer.alloc(2 + 108);
  sa.writeUInt16LE(AF_UNIX, 0);
  name.copy(sa, 2);
  return sa;
}

function timeval(seconds: number): Buffer {
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(BigInt(seconds), 0);
  return tv;
}

/** One request; throws a SyscallError (ENOENT, ECONNREFUSED, EACCES, EAGAIN on timeout) when the service cannot be reached. */
function request(method: 'GET' | 'PUT' | 'DELETE', url: string, body?: unknown): Reply {
  const file = mdsSocketPath();
  const fd = sys().socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC);
  try {
    sys().setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, timeval(TIMEOUT_S));
    sys().setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, timeval(TIMEOUT_S));
    sys().connect(fd, sockaddrUn(file), file);
    const payload = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    const head = `${method} ${url} HTTP/1.0\r\nHost: tspod-mds\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n`;
    const out = Buffer.concat([Buffer.from(head), payload]);
    for (let off = 0; off < out.length; ) off += fs.writeSync(fd, out, off);
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(text);
    if (!m) throw new TspodError(ErrorCode.System, `the metadata service at ${file} sent a malformed reply`);
    return { status: Number(m[1]), body: m[2] };
  } finally {
    fs.closeSync(fd);
  }
}

function unreachable(e: unknown): boolean {
  const code = e instanceof SyscallError ? e.code : (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTDIR';
}

/** request() for --mds-register: the one-line error when no service answers. */
function serviceRequest(method: 'GET' | 'PUT', url: string, body?: unknown): Reply {
  try {
    return request(method, url, body);
  } catch (e) {
    if (e instanceof TspodError) throw e;
    if (unreachable(e)) throw new TspodError(ErrorCode.Conflict, NO_SERVICE);
    throw new TspodError(ErrorCode.System, `--mds-register: the metadata service at ${mdsSocketPath()} cannot be used: ${(e as Error).message}`);
  }
}

/** Fails with the one-line --mds-register message unless a service answers on the socket. */
export function checkMetadataService(): void {
  const r = serviceRequest('GET', '/');
  if (r.status !== 200) throw new TspodError(ErrorCode.System, `--mds-register: the service at ${mdsSocketPath()} answered ${r.status}: is it tspod's metadata service?`);
}

/** The record stage0 registers for a prepared pod (from its pod directory). */
export function podRecord(podDir: string): MdsPodRecord {
  const manifest = JSON.parse(fs.readFileSync(path.join(podDir, POD_FILES.manifest), 'utf8')) as PodManifest;
  const images: Record<string, AppcImageManifest> = {};
  for (const a of manifest.apps) images[a.name] = JSON.parse(fs.readFileSync(path.join(podDir, POD_FILES.appManifest(a.name)), 'utf8')) as AppcImageManifest;
  return { manifest, images };
}

/**
 * --mds-register: registers the pod with the running service and writes the
 * answer (token, port) into the pod's `mds` file for stage1. Throws the one-line
 * error when no service runs.
 */
export function registerPod(pod: Pod): MdsRegistration {
  const r = serviceRequest('PUT', `/pods/${pod.uuid}`, podRecord(pod.dir));
  if (r.status !== 200) throw new TspodError(ErrorCode.System, `--mds-register: the metadata service refused the pod: ${r.status} ${r.body.trim().split('\n')[0]}`);
  let reg: MdsRegistration;
  try {
    reg = JSON.parse(r.body) as MdsRegistration;
    writeMdsRegistration(pod.dir, reg);
    readMdsRegistration(pod.dir);
  } catch (e) {
    unregisterPod(pod.uuid);
    throw new TspodError(ErrorCode.System, `--mds-register: ${(e as Error).message}`);
  }
  return reg;
}

/** Removes the pod from the service; errors (no service, unknown pod) are ignored, as rkt's gc does. */
export function unregisterPod(uuid: string): void {
  try {
    request('DELETE', `/pods/${uuid}`);
  } catch {
    /* the service is gone or never knew the pod */
  }
}

/** gc/rm: unregisters a pod that was registered (it has an `mds` file). */
export function unregisterIfRegistered(podDir: string, uuid: string): void {
  if (fs.existsSync(path.join(podDir, POD_FILES.mds))) unregisterPod(uuid);
}

/**
 * run-prepared without --mds-register: a registration that an earlier start
 * left (stage1 refused it after stage0 had registered, and the pod went back
 * to prepared with its `mds` file) is dropped, so that this start gets no
 * AC_METADATA_URL and the old token reads nothing.
 */
export function dropRegistration(pod: Pod): void {
  const file = path.join(pod.dir, POD_FILES.mds);
  if (!fs.existsSync(file)) return;
  unregisterPod(pod.uuid);
  fs.rmSync(file, { force: true });
}
