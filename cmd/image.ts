// `tspod image list|rm|gc|cat-manifest|export|extract|render|verify` (rkt's image commands).
import { TspodError, ErrorCode } from '../native/errors.js';
import { withStore } from '../store/store.js';
import { imageGc } from '../stage0/image-gc.js';
import { exportImage, extractImage, verifyImage, originalManifest } from '../store/image-ops.js';
import { command, commandGroup, type Command } from './command.js';
import { eachItem, forEachItem, itemsDone } from './exit.js';
import { parseDuration } from './global.js';
import {
  FORMAT_FLAG,
  FULL_FLAG,
  IMAGE_LIST_FIELDS,
  LEGEND_FLAG,
  formatDuration,
  imageField,
  imageListJson,
  imageListText,
  printAs,
  type ImageListField,
} from './output.js';

const IMAGE = { image: { kind: 'value', required: true } } as const;
const IMAGES = { images: { kind: 'list', required: true } } as const;
const OVERWRITE = { kind: 'bool', default: false } as const;

const listCommand = command({
  name: 'list',
  aliases: ['ls'],
  describe: 'list the images in the store',
  flags: {
    fields: { kind: 'value', default: IMAGE_LIST_FIELDS.join(','), describe: `comma-separated fields: ${IMAGE_LIST_FIELDS.join(', ')}` },
    sort: { kind: 'value', default: 'importtime', describe: 'field to sort by' },
    order: { kind: 'value', choices: ['asc', 'desc'], default: 'asc' },
    full: { ...FULL_FLAG, describe: 'full IDs, sizes in bytes, exact times' },
    legend: LEGEND_FLAG,
    format: FORMAT_FLAG,
  },
  run: async (a, g) => {
    const fields = parseFields(a.fields);
    const sortBy = parseFields(a.sort)[0];
    const sign = a.order === 'desc' ? -1 : 1;
    await withStore(g.dir, async (store) => {
      const images = store.images.all();
      images.sort((x, y) => {
        const [kx, ky] = [imageField(x, sortBy), imageField(y, sortBy)];
        return sign * (kx < ky ? -1 : kx > ky ? 1 : 0);
      });
      printAs(a.format, () => imageListJson(images), () => imageListText(images, fields, a.full, a.legend));
    });
  },
});

function parseFields(s: string): ImageListField[] {
  const out: ImageListField[] = [];
  for (const raw of s.split(',')) {
    const f = raw.trim().toLowerCase();
    if (!f) continue;
    const field = IMAGE_LIST_FIELDS.find((x) => x === f);
    if (!field) throw new TspodError(ErrorCode.BadInput, `unknown image list field ${JSON.stringify(raw)}`, { hint: `choose from ${IMAGE_LIST_FIELDS.join(', ')}` });
    out.push(field);
  }
  if (!out.length) throw new TspodError(ErrorCode.BadInput, 'no fields given', { hint: `choose from ${IMAGE_LIST_FIELDS.join(', ')}` });
  return out;
}

const rmCommand = command({
  name: 'rm',
  describe: 'remove images from the store (by ID prefix or name)',
  positionals: IMAGES,
  run: (a, g) =>
    withStore(g.dir, async (store) => {
      // As rkt: every argument is resolved first, so an image named twice (by
      // name and by ID) is removed once; the count goes to stderr as `rm: N …`.
      const ids = new Set<string>();
      let removed = 0;
      let failed = await eachItem(a.images, g.debug, (ref) => void ids.add(store.images.resolve(ref)));
      failed += await eachItem(ids, g.debug, (id) => {
        store.images.remove(id);
        process.stdout.write(`successfully removed aci for image: "${id}"\n`);
        removed++;
      });
      if (removed) process.stderr.write(`rm: ${removed} image(s) successfully removed\n`);
      itemsDone(failed);
    }),
});

const gcCommand = command({
  name: 'gc',
  describe: 'remove images not used for the grace period, and unreferenced layers',
  flags: { 'grace-period': { kind: 'value', default: '24h', describe: 'keep images used within this duration' } },
  run: async (a, g) => {
    const grace = parseDuration(a['grace-period'], 'grace-period');
    const report = await withStore(g.dir, (store) => imageGc(store, grace));
    for (const id of report.removedImages) process.stdout.write(`successfully removed aci for image: "${id}"\n`);
    for (const id of report.keptInUse) process.stderr.write(`tspod: image "${id}" not removed: used by a pod\n`);
    for (const id of report.removedLayers) process.stdout.write(`removed layer "${id}"\n`);
    if (report.removedImages.length) process.stdout.write(`${report.removedImages.length} image(s) successfully removed\n`);
    // Images kept because a pod uses them were named above: that is the answer, not this line.
    if (!report.removedImages.length && !report.removedLayers.length && !report.keptInUse.length) {
      process.stderr.write(`tspod: no images unused for more than ${formatDuration(grace)}\n`);
    }
  },
});

const catManifestCommand = command({
  name: 'cat-manifest',
  describe: "print an image's manifest (the internal appc manifest, or the original OCI one)",
  positionals: IMAGE,
  flags: {
    'pretty-print': { kind: 'bool', describe: 'indent the JSON (default: on for the appc manifest; off for --original, which prints the stored bytes exactly)' },
    original: { kind: 'value', choices: ['manifest', 'config', 'index'], describe: 'print the original OCI/Docker manifest, config or index as fetched' },
  },
  run: (a, g) =>
    withStore(g.dir, async (store) => {
      const img = store.images.get(store.images.resolve(a.image));
      if (!a.original) return printAs(a['pretty-print'] === false ? 'json' : 'json-pretty', () => img.manifest, () => '');
      const bytes = originalManifest(store, img, a.original as 'manifest' | 'config' | 'index');
      // The bytes as fetched, so that their digest can be checked (`| sha256sum`).
      if (a['pretty-print'] === true) printAs('json-pretty', () => JSON.parse(bytes.toString('utf8')), () => '');
      else process.stdout.write(bytes);
    }),
});

const exportCommand = command({
  name: 'export',
  describe: 'write an image to an ACI file (uncompressed; an ACI byte for byte as fetched)',
  positionals: { ...IMAGE, output: { kind: 'value', required: true } },
  flags: { overwrite: { ...OVERWRITE, describe: 'replace the output file' } },
  run: (a, g) => withStore(g.dir, (store) => exportImage(store, store.images.resolve(a.image), a.output, a.overwrite)),
});

function extractCommand(kind: 'extract' | 'render'): Command {
  return command({
    name: kind,
    describe:
      kind === 'render'
        ? "write an image's rootfs as an app would see it (all layers, an ACI's dependencies and pathWhitelist applied) and its manifest to a directory"
        : "write an image's files and manifest to a directory (an ACI's own files only)",
    positionals: { ...IMAGE, target: { kind: 'value', required: true } },
    flags: {
      'rootfs-only': { kind: 'bool', default: false, describe: 'write only the rootfs, directly into the directory' },
      overwrite: { ...OVERWRITE, describe: 'replace the directory if it exists' },
    },
    run: (a, g) =>
      withStore(g.dir, (store) =>
        extractImage(store, store.images.resolve(a.image), a.target, { rootfsOnly: a['rootfs-only'], overwrite: a.overwrite, render: kind === 'render' }),
      ),
  });
}

const verifyCommand = command({
  name: 'verify',
  describe: "re-hash an image's unpacked layers and stored manifests and report any change",
  positionals: IMAGES,
  run: (a, g) =>
    withStore(g.dir, (store) =>
      forEachItem(a.images, g.debug, async (ref, fail) => {
        const id = store.images.resolve(ref);
        const problems = await verifyImage(store, id);
        for (const p of problems) fail(new TspodError(ErrorCode.DigestMismatch, `image "${id}": ${p}`));
        if (!problems.length) process.stdout.write(`image "${id}": ok\n`);
      }),
    ),
});

export const imageCommand: Command = commandGroup('image', 'operate on images in the store', [
  listCommand,
  rmCommand,
  gcCommand,
  catManifestCommand,
  exportCommand,
  extractCommand('extract'),
  extractCommand('render'),
  verifyCommand,
]);
