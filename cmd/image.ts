// `tspod image list|rm|gc|cat-manifest|export|extract|render|verify` (rkt's image commands).
import type { Argv, CommandModule } from 'yargs';
import { TspodError, ErrorCode } from '../native/errors.js';
import { withStore } from '../store/store.js';
import { imageGc } from '../stage0/image-gc.js';
import { exportImage, extractImage, verifyImage, originalManifest } from '../store/image-ops.js';
import type { StoredImage } from '../store/images.js';
import type { GlobalArgs } from './global.js';
import { formatDuration, formatOption, shortId, fullTime, humanBytes, humanTime, parseDuration, printJson, tabulate, type OutputFormat } from './output.js';

type SetExit = (code: number) => void;

const LIST_FIELDS = ['id', 'name', 'size', 'importtime', 'lastused'] as const;
type ListField = (typeof LIST_FIELDS)[number];
const FIELD_TITLES: Record<ListField, string> = {
  id: 'ID',
  name: 'NAME',
  size: 'SIZE',
  importtime: 'IMPORT TIME',
  lastused: 'LAST USED',
};

function imageName(img: StoredImage): string {
  return img.names[0] ?? img.manifest.name;
}

function listCommand(): CommandModule<GlobalArgs, GlobalArgs & Record<string, unknown>> {
  return {
    command: 'list',
    aliases: ['ls'],
    describe: 'list the images in the store',
    builder: (y: Argv<GlobalArgs>) =>
      y.options({
        fields: { type: 'string', default: LIST_FIELDS.join(','), describe: `comma-separated fields: ${LIST_FIELDS.join(', ')}` },
        sort: { type: 'string', default: 'importtime', describe: 'field to sort by' },
        order: { type: 'string', choices: ['asc', 'desc'], default: 'asc' },
        full: { type: 'boolean', default: false, describe: 'full IDs, sizes in bytes, exact times' },
        // --no-legend: yargs reads --no-X as X=false, so the option is `legend`.
        legend: { type: 'boolean', default: true, describe: 'column headers (--no-legend: none)' },
        format: formatOption,
      }) as unknown as Argv<GlobalArgs & Record<string, unknown>>,
    handler: async (a) => {
      const fields = parseFields(String(a.fields));
      const sortBy = parseFields(String(a.sort))[0];
      await withStore(a.dir, async (store) => {
        const images = store.images.all();
        const key = (img: StoredImage): string | number => {
          switch (sortBy) {
            case 'id':
              return img.record.id;
            case 'name':
              return imageName(img);
            case 'size':
              return img.record.size;
            case 'importtime':
              return img.record.importTime;
            case 'lastused':
              return img.lastUsed;
          }
        };
        images.sort((x, y) => {
          const kx = key(x);
          const ky = key(y);
          const c = kx < ky ? -1 : kx > ky ? 1 : 0;
          return a.order === 'desc' ? -c : c;
        });
        const format = a.format as OutputFormat;
        if (format !== 'tabbed') {
          printJson(
            images.map((img) => ({
              id: img.record.id,
              name: imageName(img),
              import_time: img.record.importTime * 1e6,
              last_used_time: Math.round(img.lastUsed) * 1e6,
              size: img.record.size,
            })),
            format,
          );
          return;
        }
        const full = Boolean(a.full);
        const rows = images.map((img) =>
          fields.map((f) => {
            switch (f) {
              case 'id':
                return full ? img.record.id : shortId(img.record.id, 12);
              case 'name':
                return imageName(img);
              case 'size':
                return full ? String(img.record.size) : humanBytes(img.record.size);
              case 'importtime':
                return full ? fullTime(img.record.importTime) : humanTime(img.record.importTime);
              case 'lastused':
                return full ? fullTime(img.lastUsed) : humanTime(img.lastUsed);
            }
          }),
        );
        if (a.legend !== false) rows.unshift(fields.map((f) => FIELD_TITLES[f]));
        process.stdout.write(tabulate(rows));
      });
    },
  };
}

function parseFields(s: string): ListField[] {
  const out: ListField[] = [];
  for (const raw of s.split(',')) {
    const f = raw.trim().toLowerCase();
    if (!f) continue;
    if (!(LIST_FIELDS as readonly string[]).includes(f)) {
      throw new TspodError(ErrorCode.Usage, `unknown image list field ${JSON.stringify(raw)}`, {
        hint: `choose from ${LIST_FIELDS.join(', ')}`,
      });
    }
    out.push(f as ListField);
  }
  if (!out.length) throw new TspodError(ErrorCode.Usage, 'no fields given', { hint: `choose from ${LIST_FIELDS.join(', ')}` });
  return out;
}

function rmCommand(setExit: SetExit): CommandModule<GlobalArgs, GlobalArgs & { images: string[] }> {
  return {
    command: 'rm <images..>',
    describe: 'remove images from the store (by ID prefix or name)',
    handler: async (a) => {
      await withStore(a.dir, async (store) => {
        // As rkt: every argument is resolved first, so an image named twice (by
        // name and by ID) is removed once; the count goes to stderr as `rm: N …`.
        const ids = new Set<string>();
        let failed = 0;
        for (const ref of a.images) {
          try {
            ids.add(store.images.resolve(ref));
          } catch (e) {
            failed++;
            process.stderr.write(`tspod: ${e instanceof TspodError ? e.line : String(e)}\n`);
          }
        }
        let removed = 0;
        for (const id of ids) {
          try {
            store.images.remove(id);
            process.stdout.write(`successfully removed aci for image: "${id}"\n`);
            removed++;
          } catch (e) {
            failed++;
            process.stderr.write(`tspod: ${e instanceof TspodError ? e.line : String(e)}\n`);
          }
        }
        if (removed) process.stderr.write(`rm: ${removed} image(s) successfully removed\n`);
        if (failed) setExit(254);
      });
    },
  };
}

function gcCommand(): CommandModule<GlobalArgs, GlobalArgs & { 'grace-period': string }> {
  return {
    command: 'gc',
    describe: 'remove images not used for the grace period, and unreferenced layers',
    builder: (y: Argv<GlobalArgs>) =>
      y.option('grace-period', { type: 'string', default: '24h', describe: 'keep images used within this duration' }) as Argv<
        GlobalArgs & { 'grace-period': string }
      >,
    handler: async (a) => {
      const grace = parseDuration(a['grace-period'], 'grace-period');
      await withStore(a.dir, async (store) => {
        const report = await imageGc(store, grace);
        for (const id of report.removedImages) process.stdout.write(`successfully removed aci for image: "${id}"\n`);
        for (const id of report.keptInUse) process.stderr.write(`tspod: image "${id}" not removed: used by a pod\n`);
        for (const id of report.removedLayers) process.stdout.write(`removed layer "${id}"\n`);
        if (report.removedImages.length) process.stdout.write(`${report.removedImages.length} image(s) successfully removed\n`);
        // Images kept because a pod uses them were named above: that is the answer, not this line.
        if (!report.removedImages.length && !report.removedLayers.length && !report.keptInUse.length) {
          process.stderr.write(`tspod: no images unused for more than ${formatDuration(grace)}\n`);
        }
      });
    },
  };
}

function catManifestCommand(): CommandModule<GlobalArgs, GlobalArgs & Record<string, unknown>> {
  return {
    command: 'cat-manifest <image>',
    describe: "print an image's manifest (the internal appc manifest, or the original OCI one)",
    builder: (y: Argv<GlobalArgs>) =>
      y.options({
        'pretty-print': {
          type: 'boolean',
          describe: 'indent the JSON (default: on for the appc manifest; off for --original, which prints the stored bytes exactly)',
        },
        original: {
          type: 'string',
          choices: ['manifest', 'config', 'index'],
          describe: 'print the original OCI/Docker manifest, config or index as fetched',
        },
      }) as unknown as Argv<GlobalArgs & Record<string, unknown>>,
    handler: async (a) => {
      await withStore(a.dir, async (store) => {
        const id = store.images.resolve(String(a.image));
        const img = store.images.get(id);
        if (a.original) {
          const bytes = originalManifest(store, img, a.original as 'manifest' | 'config' | 'index');
          // The bytes as fetched, so that their digest can be checked (`| sha256sum`).
          if (a['pretty-print'] !== true) {
            process.stdout.write(bytes);
            return;
          }
          process.stdout.write(`${JSON.stringify(JSON.parse(bytes.toString('utf8')), null, '\t')}\n`);
          return;
        }
        process.stdout.write(`${a['pretty-print'] !== false ? JSON.stringify(img.manifest, null, '\t') : JSON.stringify(img.manifest)}\n`);
      });
    },
  };
}

function exportCommand(): CommandModule<GlobalArgs, GlobalArgs & Record<string, unknown>> {
  return {
    command: 'export <image> <output>',
    describe: 'write an image to an ACI file (uncompressed; an ACI byte for byte as fetched)',
    builder: (y: Argv<GlobalArgs>) =>
      y.option('overwrite', { type: 'boolean', default: false, describe: 'replace the output file' }) as unknown as Argv<
        GlobalArgs & Record<string, unknown>
      >,
    handler: async (a) => {
      await withStore(a.dir, async (store) => {
        const id = store.images.resolve(String(a.image));
        await exportImage(store, id, String(a.output), Boolean(a.overwrite));
      });
    },
  };
}

function extractCommand(kind: 'extract' | 'render'): CommandModule<GlobalArgs, GlobalArgs & Record<string, unknown>> {
  return {
    command: `${kind} <image> <target>`,
    describe:
      kind === 'render'
        ? "write an image's rootfs as an app would see it (all layers, an ACI's dependencies and pathWhitelist applied) and its manifest to a directory"
        : "write an image's files and manifest to a directory (an ACI's own files only)",
    builder: (y: Argv<GlobalArgs>) =>
      y.options({
        'rootfs-only': { type: 'boolean', default: false, describe: 'write only the rootfs, directly into the directory' },
        overwrite: { type: 'boolean', default: false, describe: 'replace the directory if it exists' },
      }) as unknown as Argv<GlobalArgs & Record<string, unknown>>,
    handler: async (a) => {
      await withStore(a.dir, async (store) => {
        const id = store.images.resolve(String(a.image));
        await extractImage(store, id, String(a.target), {
          rootfsOnly: Boolean(a['rootfs-only']),
          overwrite: Boolean(a.overwrite),
          render: kind === 'render',
        });
      });
    },
  };
}

function verifyCommand(setExit: SetExit): CommandModule<GlobalArgs, GlobalArgs & { images: string[] }> {
  return {
    command: 'verify <images..>',
    describe: "re-hash an image's unpacked layers and stored manifests and report any change",
    handler: async (a) => {
      await withStore(a.dir, async (store) => {
        for (const ref of a.images) {
          try {
            const id = store.images.resolve(ref);
            const problems = await verifyImage(store, id);
            if (problems.length === 0) {
              process.stdout.write(`image "${id}": ok\n`);
            } else {
              for (const p of problems) process.stderr.write(`tspod: image "${id}": ${p}\n`);
              setExit(254);
            }
          } catch (e) {
            process.stderr.write(`tspod: ${e instanceof TspodError ? e.line : String(e)}\n`);
            setExit(254);
          }
        }
      });
    },
  };
}

export function imageCommand(setExit: SetExit): CommandModule {
  return {
    command: 'image <command>',
    describe: 'operate on images in the store',
    builder: (y) =>
      y
        .command(listCommand() as unknown as CommandModule)
        .command(rmCommand(setExit) as unknown as CommandModule)
        .command(gcCommand() as unknown as CommandModule)
        .command(catManifestCommand() as unknown as CommandModule)
        .command(exportCommand() as unknown as CommandModule)
        .command(extractCommand('extract') as unknown as CommandModule)
        .command(extractCommand('render') as unknown as CommandModule)
        .command(verifyCommand(setExit) as unknown as CommandModule)
        .demandCommand(1, 'specify an image subcommand (see tspod image --help)'),
    handler: () => {},
  };
}
