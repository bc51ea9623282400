// What a tar entry is, for store/tar/reader.ts and store/tar/writer.ts.

export const TAR_BLOCK = 512;

export type TarType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  /** As stored (PAX path, GNU long name or ustar prefix/name), not normalised. */
  path: string;
  type: TarType;
  /** Permission bits (and setuid/setgid/sticky). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data: a regular file's length; 0 for every other type. */
  size: number;
  /** Seconds since the epoch (fractional when a PAX record said so). */
  mtime: number;
  /** The PAX atime, else mtime. Writers take atime only from `pax`. */
  atime: number;
  /** Symlink target, or the hard link's target path in the archive. */
  linkpath: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes (PAX SCHILY.xattr.* and LIBARCHIVE.xattr.*), values as bytes. */
  xattrs: Map<string, Buffer>;
  /**
   * The other PAX records, carried as they are (atime, ctime, an exact mtime, …)
   * so that a writer can re-emit them. Neither the fields above (path, linkpath,
   * size, uid, gid, uname, gname) nor xattrs are here, nor empty values.
   */
  pax: Map<string, Buffer>;
}

/** PAX keys that are TarEntry fields. */
export const PAX_FIELD_KEYS: ReadonlySet<string> = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'uname', 'gname']);
export const SCHILY_XATTR = 'SCHILY.xattr.';
export const LIBARCHIVE_XATTR = 'LIBARCHIVE.xattr.';

/** `size` rounded up to whole blocks. */
export function tarPaddedSize(size: number): number {
  return Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}
