// appc's os/unix/sysctl isolator (spec/ace.md): a map of sysctl name -> value,
// written in the pod's own namespaces before anything of the pod runs. Only
// namespaced sysctls, and only those of a namespace the pod has of its own: net.*
// with a private network namespace (any --net but host), the IPC ones with a private IPC
// namespace (not --ipc=parent), kernel.domainname (the pod always has its own UTS
// namespace; its hostname is --hostname's). Shared by stage0 (prepare refuses the
// rest) and stage1 (the plan's `sysctl` directives).
import type { AppcIsolator } from './appc.js';

export const SYSCTL = 'os/unix/sysctl';

export type SysctlNamespace = 'net' | 'ipc' | 'uts';

/** The namespace a sysctl belongs to; undefined for one that is the host's whole kernel's. */
export function sysctlNamespace(name: string): SysctlNamespace | undefined {
  if (name.startsWith('net.')) return 'net';
  if (name.startsWith('fs.mqueue.')) return 'ipc';
  if (/^kernel\.(shm[a-z_]*|msg[a-z_]*|sem|sem_next_id)$/.test(name)) return 'ipc';
  if (name === 'kernel.domainname') return 'uts';
  return undefined;
}

const ALLOWED = 'net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname';

/**
 * The sysctls of some isolators (several os/unix/sysctl ones add up), checked:
 * names in dotted form ([a-z0-9_-] parts; `/` written as `.`), namespaced, values
 * strings or numbers without control characters. Throws an Error (without the
 * app's name) for anything else, or one name given twice with two values.
 */
export function sysctlsFromIsolators(isolators: readonly AppcIsolator[] | undefined, into = new Map<string, string>()): Map<string, string> {
  for (const iso of isolators ?? []) {
    if (iso?.name !== SYSCTL) continue;
    const v = iso.value;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`isolator ${SYSCTL}: the value must be a map of sysctl names to values`);
    for (const [raw, value] of Object.entries(v as Record<string, unknown>)) {
      const name = raw.replace(/\//g, '.');
      if (!/^[a-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/.test(name)) throw new Error(`isolator ${SYSCTL}: bad sysctl name ${JSON.stringify(raw)}`);
      if (!sysctlNamespace(name)) throw new Error(`isolator ${SYSCTL}: ${name} is not a namespaced sysctl (allowed: ${ALLOWED})`);
      if ((typeof value !== 'string' && typeof value !== 'number') || /[\x00-\x1f]/.test(String(value)) || String(value) === '') {
        throw new Error(`isolator ${SYSCTL}: ${name}: the value must be a non-empty string or a number`);
      }
      const prev = into.get(name);
      if (prev !== undefined && prev !== String(value)) throw new Error(`isolator ${SYSCTL}: ${name} is given two values (${JSON.stringify(prev)} and ${JSON.stringify(String(value))})`);
      into.set(name, String(value));
    }
  }
  return into;
}

/**
 * The first sysctl of `sysctls` whose namespace the pod does not have of its own,
 * as a message; undefined when all can be written.
 */
export function sysctlNamespaceProblem(sysctls: Map<string, string>, pod: { net: string; ipc: string }): string | undefined {
  for (const name of sysctls.keys()) {
    const ns = sysctlNamespace(name);
    if (ns === 'net' && pod.net === 'host') return `isolator ${SYSCTL}: ${name} needs a network namespace of the pod's own (any --net but host); with --net=host it would be the host's`;
    if (ns === 'ipc' && pod.ipc === 'parent') return `isolator ${SYSCTL}: ${name} needs an IPC namespace of the pod's own; with --ipc=parent it would be the host's`;
  }
  return undefined;
}
