// `smoothcast captions add ID FILE --lang L [--label X] [--kind captions]`, `captions ls ID`, `captions rm ID CAPTION`:
// sidecar text tracks on the data folder a running server uses (its origin reads the catalog per manifest, so a
// change shows at once). Also the `--captions FILE[:lang]` of `smoothcast import`.
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Config } from '../core/config.ts';
import { SmoothcastError } from '../core/errors.ts';
import { parseCaptionFile, parseLanguageTag } from '../media/captions/index.ts';
import { addCaption } from '../roles/api/captions.ts';
import { presentCaption } from '../roles/api/present.ts';
import { openData } from '../roles/server.ts';
import type { Cli } from './main.ts';

export interface CaptionSpec {
  file: string;
  language: string;
  bytes: Buffer;
}

/**
 * `FILE[:lang]`, read and validated (syntax, cue order, size, language) before anything is imported, so a bad
 * caption file stops the import with nothing changed. Without `:lang`, a tag in the name (`film.fr.srt`) is used.
 */
export async function readCaptionSpec(spec: string, maxBytes: number): Promise<CaptionSpec> {
  const m = /^(.*):([A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*)$/.exec(spec);
  const file = m ? m[1]! : spec;
  const fromName = /\.([a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?)\.(?:srt|vtt)$/i.exec(basename(file))?.[1];
  const language = parseLanguageTag(m ? m[2]! : (fromName ?? 'und'));
  const st = await stat(file).catch(() => null);
  if (!st?.isFile()) throw new SmoothcastError('CAPTION_INVALID', `no caption file ${file}`);
  if (st.size > maxBytes) {
    throw new SmoothcastError('CAPTION_TOO_LARGE', `${file} is ${st.size} bytes; at most ${maxBytes} allowed`);
  }
  const bytes = await readFile(file);
  parseCaptionFile(bytes);
  return { file, language, bytes };
}

export async function captionsCommand(config: Config, cli: Cli): Promise<number> {
  const [sub, id, arg] = cli.positionals;
  const data = await openData(config);
  const base = config.server.publicUrl || `http://localhost:${config.server.port}`;
  const json = Boolean(cli.values.json);
  try {
    const asset = id ? await data.assets.get(id) : null;
    if (!id || !asset) throw new SmoothcastError('ASSET_NOT_FOUND', id ? `no asset ${id}` : 'give an asset id');
    const show = (c: Parameters<typeof presentCaption>[0]) => presentCaption(c, asset, base);
    if (sub === 'ls') {
      for (const c of await data.captions.list(id)) {
        const v = show(c);
        console.log(json ? JSON.stringify(v) : `${v.id}  ${v.language}  ${v.label}  (${v.source}, ${v.cues} cues)`);
      }
      return 0;
    }
    if (sub === 'rm') {
      if (!arg || !(await data.captions.remove(id, arg)))
        throw new SmoothcastError('CAPTION_NOT_FOUND', `no caption ${arg}`);
      await data.storage.remove(`assets/${id}/captions/${arg}.vtt`).catch(() => {});
      return 0;
    }
    if (sub === 'add') {
      if (!arg) throw new SmoothcastError('BAD_REQUEST', 'give the caption file: captions add ID FILE --lang L');
      const lang = typeof cli.values.lang === 'string' ? cli.values.lang : undefined;
      const spec = await readCaptionSpec(lang ? `${arg}:${lang}` : arg, config.captions.maxBytes);
      const c = await addCaption({ ...data, maxBytes: config.captions.maxBytes }, id, {
        body: spec.bytes,
        language: spec.language,
        label: typeof cli.values.label === 'string' ? cli.values.label : undefined,
        kind: typeof cli.values.kind === 'string' ? cli.values.kind : undefined,
      });
      const v = show(c);
      console.log(json ? JSON.stringify(v) : `added ${v.id}  ${v.language}  ${v.label}  (${v.cues} cues)`);
      return 0;
    }
    console.error('smoothcast captions: use add, ls or rm');
    return 2;
  } finally {
    await data.db.close();
  }
}
