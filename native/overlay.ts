// overlayfs's lookup rules over layer directories, in one place: the resolver
// (native/image-fs.ts), rendering (store/layers/render.ts), the pathWhitelist
// layer (store/layers/whitelist.ts) and unpacking's hardlinks into lower layers
// (store/layers/unpack.ts, through image-fs.ts) all merge layers with these.
//
// At each name the topmost layer that has it decides: a whiteout (a character
// device 0:0) hides the name; a non-directory hides everything below it; a
// directory merges with the directories of the same name below it, down to the
// first opaque one (xattr trusted.overlay.opaque=y), whiteout or non-directory. A
// layer whose root is opaque hides the layers below it (overlayfs itself ignores
// an opaque lower root: see visible roots below).
//
// Nothing is followed: every step is an lstat of one name inside a directory the
// caller found to be a real directory (never a symlink), and the xattr is read
// with lgetxattr. This module is in native/ because stage1 uses the resolver; it
// imports only sys.ts and errors.ts.
import fs from 'node:fs';
import { errnoCode } from './errors.js';
import { sys } from './sys.js';

export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

type AnyStats = fs.Stats | fs.BigIntStats;

/**
 * overlayfs keeps its own state in trusted.overlay.* (user.overlay.* when mounted
 * with userxattr): opaque, redirect, origin, metacopy... A layer must never bring
 * those in from a tar, and a rendered or exported tree must not carry them out of
 * a layer.
 */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** An overlayfs whiteout: a character device with device number 0:0. */
export function isWhiteoutStat(st: AnyStats): boolean {
  return st.isCharacterDevice() && (typeof st.rdev === 'bigint' ? st.rdev === 0n : st.rdev === 0);
}

/** Whether the directory at `path` (not followed if a symlink) is overlay-opaque. */
export function isOpaqueDir(path: string): boolean {
  const v = sys().lgetxattr(path, OVERLAY_OPAQUE_XATTR);
  return v !== undefined && v.length === 1 && v[0] === 0x79; /* 'y' */
}

/** lstat, or undefined when there is no such name (a missing name or parent, or a name too long). */
export function lstatIfExists(p: string): fs.Stats | undefined;
export function lstatIfExists(p: string, opts: { bigint: true }): fs.BigIntStats | undefined;
export function lstatIfExists(p: string, opts?: { bigint: true }): AnyStats | undefined {
  try {
    return opts ? fs.lstatSync(p, opts) : fs.lstatSync(p);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') return undefined;
    throw e;
  }
}

/** One layer's part of a merged name: `index` is its position in the list given (top first). */
export interface OverlayPart<S extends AnyStats = fs.Stats> {
  index: number;
  host: string;
  stat: S;
}

export interface LstatChoice<S extends AnyStats> {
  lstat: (p: string) => S | undefined;
}

export const NUMBER_STATS: LstatChoice<fs.Stats> = { lstat: (p) => lstatIfExists(p) };
export const BIGINT_STATS: LstatChoice<fs.BigIntStats> = { lstat: (p) => lstatIfExists(p, { bigint: true }) };

/**
 * Of the layer directories (or directories inside layers) given top first, those
 * that merge: a missing one is skipped; a whiteout or non-directory ends the
 * list, and so does an opaque one (after it).
 */
export function overlayRoots<S extends AnyStats>(topFirst: readonly string[], stats: LstatChoice<S>): OverlayPart<S>[] {
  const parts: OverlayPart<S>[] = [];
  for (let i = 0; i < topFirst.length; i++) {
    const st = stats.lstat(topFirst[i]);
    if (!st) continue;
    if (isWhiteoutStat(st) || !st.isDirectory()) break;
    parts.push({ index: i, host: topFirst[i], stat: st });
    if (i < topFirst.length - 1 && isOpaqueDir(topFirst[i])) break;
  }
  return parts;
}

/** What a name of a merged directory is: the directories that merge (top first), or one non-directory. */
export type OverlayChild<S extends AnyStats> = { dirs: OverlayPart<S>[]; leaf?: undefined } | { dirs?: undefined; leaf: OverlayPart<S> };

/**
 * The child `name` of the directory merged from `dirsTopFirst` (real directories,
 * each reached without following a symlink), or undefined when no layer has it
 * or a whiteout hides it. `index` of each part is its parent's position in
 * `dirsTopFirst`.
 */
export function overlayChild<S extends AnyStats>(dirsTopFirst: readonly string[], name: string, stats: LstatChoice<S>): OverlayChild<S> | undefined {
  const dirs: OverlayPart<S>[] = [];
  const n = dirsTopFirst.length;
  for (let i = 0; i < n; i++) {
    const host = `${dirsTopFirst[i]}/${name}`;
    const st = stats.lstat(host);
    if (!st) continue;
    if (isWhiteoutStat(st)) break;
    if (st.isDirectory()) {
      dirs.push({ index: i, host, stat: st });
      if (i < n - 1 && isOpaqueDir(host)) break;
      continue;
    }
    // A non-directory: the entry if no directory above it; else hidden by them.
    if (dirs.length === 0) return { leaf: { index: i, host, stat: st } };
    break;
  }
  return dirs.length > 0 ? { dirs } : undefined;
}

/** The names a merged directory may have (before whiteouts and opaque directories are applied). */
export function overlayNames(dirsTopFirst: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const d of dirsTopFirst) for (const name of fs.readdirSync(d)) names.add(name);
  return names;
}
