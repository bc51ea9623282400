// What an image argument names: rkt's rules (its DistFromImageString; see
// docs/architecture.md, "Images") extended with the OCI transports skopeo and podman use.
//
//   docker://REF, docker:REF                    a registry image
//   oci:DIR[:TAG]                               an OCI image layout
//   oci-archive:FILE[:TAG]                      a tar of an OCI image layout
//   docker-archive:FILE[:NAME:TAG | :@N]        what `docker save` writes
//   http(s)://…                                 an ACI by URL
//   file://…                                    an ACI file
//   sha512-…, sha256-…                          an image ID (prefix) in the store
//   no scheme, in this order: an absolute path, an existing regular file → an
//   ACI file; contains ":" → an image name; contains "./" or ends in ".aci" →
//   an ACI file; anything else → an image name in the store.
//
// Names are looked up in the store only: tspod does no appc discovery.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TspodError, ErrorCode } from '../../native/errors.js';

export type ImageArg =
  /** An image ID or a unique prefix of one, `sha512-…` / `sha256-…`. */
  | { kind: 'id'; id: string }
  /** A name in the store: `name[:tag]`; an appc `,version=V` label becomes `:V`. */
  | { kind: 'name'; name: string }
  /** A registry reference without the transport: `busybox:1.36`, `host:5000/repo@sha256:…`. */
  | { kind: 'docker'; reference: string }
  | { kind: 'aci-url'; url: string }
  | { kind: 'aci-file'; path: string }
  | { kind: 'oci'; path: string; tag?: string }
  | { kind: 'oci-archive'; path: string; tag?: string }
  /** name: `NAME[:TAG]` as in the archive's RepoTags, or `@N` (the N-th image, from 0). */
  | { kind: 'docker-archive'; path: string; name?: string };

const TRANSPORTS = 'docker://, oci:, oci-archive:, docker-archive:, http(s)://, file://';

export function classifyImageArg(arg: string): ImageArg {
  if (arg.trim() === '') throw new TspodError(ErrorCode.Usage, 'empty image argument', { hint: 'name an image, an ACI file or URL, or an image ID' });

  const lower = arg.toLowerCase();
  for (const [prefix, kind] of [
    ['oci-archive:', 'oci-archive'],
    ['docker-archive:', 'docker-archive'],
    ['oci:', 'oci'],
  ] as const) {
    if (!lower.startsWith(prefix)) continue;
    const rest = arg.slice(prefix.length);
    const colon = rest.indexOf(':');
    const file = colon < 0 ? rest : rest.slice(0, colon);
    const ref = colon < 0 ? undefined : rest.slice(colon + 1);
    if (file === '') {
      throw new TspodError(ErrorCode.BadInput, `${JSON.stringify(arg)} names no ${kind === 'oci' ? 'directory' : 'file'}`, {
        hint: `write ${prefix}${kind === 'oci' ? 'DIR' : 'FILE'}[:${kind === 'docker-archive' ? 'NAME:TAG' : 'TAG'}]`,
      });
    }
    if (ref !== undefined && ref === '') {
      throw new TspodError(ErrorCode.BadInput, `${JSON.stringify(arg)} ends in an empty ${kind === 'docker-archive' ? 'image name' : 'tag'}`, {
        hint: 'drop the trailing ":" or name the image after it',
      });
    }
    if (kind === 'docker-archive') return { kind, path: file, ...(ref !== undefined ? { name: ref } : {}) };
    return { kind, path: file, ...(ref !== undefined ? { tag: ref } : {}) };
  }

  if (lower.startsWith('docker:')) {
    const reference = arg.slice('docker:'.length).replace(/^\/\//, '');
    if (reference === '') {
      throw new TspodError(ErrorCode.BadInput, `${JSON.stringify(arg)} names no image`, { hint: 'write docker://[REGISTRY/]REPO[:TAG|@DIGEST]' });
    }
    return { kind: 'docker', reference };
  }

  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(arg);
  if (scheme) {
    const s = scheme[1].toLowerCase();
    if (s === 'http' || s === 'https') {
      try {
        new URL(arg);
      } catch {
        throw new TspodError(ErrorCode.BadInput, `invalid URL ${JSON.stringify(arg)}`);
      }
      return { kind: 'aci-url', url: arg };
    }
    if (s === 'file') {
      let p: string;
      try {
        p = fileURLToPath(arg);
      } catch (e) {
        throw new TspodError(ErrorCode.BadInput, `invalid file URL ${JSON.stringify(arg)}: ${(e as Error).message}`, {
          hint: 'write file:///absolute/path.aci',
        });
      }
      return { kind: 'aci-file', path: p };
    }
    throw new TspodError(ErrorCode.BadInput, `unsupported image source ${JSON.stringify(`${s}://`)} in ${JSON.stringify(arg)}`, {
      hint: `use one of ${TRANSPORTS}, a file, a name or an image ID`,
    });
  }

  if (/^sha(256|512)-/i.test(arg)) return { kind: 'id', id: arg };

  if (arg.startsWith('/')) return { kind: 'aci-file', path: arg };
  if (isRegularFile(arg)) return { kind: 'aci-file', path: arg };
  if (arg.includes(':')) return { kind: 'name', name: appcLabelsToTag(arg) };
  if (arg.includes('./') || arg.endsWith('.aci')) return { kind: 'aci-file', path: arg };
  return { kind: 'name', name: appcLabelsToTag(arg) };
}

function isRegularFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * rkt accepted `name,version=1.0` (appc labels). The store keeps appc images as
 * `name:version`, so the version label becomes the tag; other labels cannot be
 * matched and are refused.
 */
function appcLabelsToTag(arg: string): string {
  if (!arg.includes(',')) return arg;
  const [name, ...labels] = arg.split(',');
  let version: string | undefined;
  for (const l of labels) {
    const eq = l.indexOf('=');
    const key = eq < 0 ? l : l.slice(0, eq);
    const value = eq < 0 ? '' : l.slice(eq + 1);
    if (key !== 'version' || value === '') {
      throw new TspodError(ErrorCode.BadInput, `image ${JSON.stringify(arg)}: only the version label can be given with a name`, {
        hint: 'write NAME,version=V or NAME:V',
      });
    }
    version = value;
  }
  if (name === '' || name.includes(':')) {
    throw new TspodError(ErrorCode.BadInput, `invalid image name ${JSON.stringify(arg)}`, { hint: 'write NAME,version=V or NAME:V' });
  }
  return version ? `${name}:${version}` : name;
}
