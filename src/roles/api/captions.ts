import type { FastifyInstance } from 'fastify';
import type { AssetRepository } from '../../core/db/assets.ts';
import type { Caption, CaptionKind, CaptionRepository } from '../../core/db/captions.ts';
import { newCaptionId } from '../../core/db/captions.ts';
import { SmoothcastError } from '../../core/errors.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import { languageLabel, parseCaptionFile, parseLanguageTag, writeWebVtt } from '../../media/captions/index.ts';

export interface CaptionApiOptions {
  assets: AssetRepository;
  captions: CaptionRepository;
  storage: Storage;
  maxBytes: number;
  /** Drops what the origin of this process cached of the asset's text tracks. */
  evictText: (assetId: string) => void;
  present: (c: Caption) => Promise<unknown>;
}

export interface AddCaptionInput {
  body: Uint8Array;
  language: string;
  label?: string | undefined;
  kind?: string | undefined;
  format?: string | undefined;
}

/**
 * Validates and stores one sidecar track (shared by the API and `smoothcast captions add`). The stored WebVTT
 * keeps the file's own times: they are the source's timeline, which the origin shifts onto the renditions'.
 */
export async function addCaption(
  o: Pick<CaptionApiOptions, 'assets' | 'captions' | 'storage' | 'maxBytes'>,
  assetId: string,
  input: AddCaptionInput,
): Promise<Caption> {
  if (!(await o.assets.get(assetId))) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${assetId}`);
  if (input.body.length > o.maxBytes) {
    throw new SmoothcastError(
      'CAPTION_TOO_LARGE',
      `the caption file is ${input.body.length} bytes; at most ${o.maxBytes}`,
    );
  }
  if (typeof input.language !== 'string' || input.language.trim() === '') {
    throw new SmoothcastError('LANGUAGE_INVALID', 'a language is required (a BCP 47 tag such as en, fr-CA, pt-BR)');
  }
  const language = parseLanguageTag(input.language);
  const kind = (input.kind ?? 'subtitles') as CaptionKind;
  if (kind !== 'subtitles' && kind !== 'captions') {
    throw new SmoothcastError('BAD_REQUEST', 'kind must be "subtitles" or "captions"');
  }
  const format = input.format;
  if (format !== undefined && format !== 'vtt' && format !== 'srt') {
    throw new SmoothcastError('BAD_REQUEST', 'format must be "vtt" or "srt" (or left out to detect it)');
  }
  const label = (input.label ?? '').trim() || languageLabel(language);
  if (label.length > 100 || /[\u0000-\u001f\u007f"]/.test(label)) {
    throw new SmoothcastError(
      'BAD_REQUEST',
      'label must be at most 100 characters, without quotes or control characters',
    );
  }
  const doc = parseCaptionFile(input.body, format);
  if (doc.cues.length === 0) throw new SmoothcastError('CAPTION_INVALID', 'the caption file has no cue');
  const text = writeWebVtt(doc);
  const id = newCaptionId();
  const key = keys.caption(assetId, id);
  // Written whole (readers never see half a file), on disk or in the bucket.
  await o.storage.putBytes(key, Buffer.from(text));
  try {
    return await o.captions.add({
      id,
      assetId,
      language,
      label,
      kind,
      origin: 'sidecar',
      default: false,
      forced: false,
      cues: doc.cues.length,
      size: Buffer.byteLength(text),
    });
  } catch (err) {
    await o.storage.remove(key).catch(() => {});
    throw err;
  }
}

async function assetOrThrow(assets: AssetRepository, id: string): Promise<void> {
  if (!(await assets.get(id))) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${id}`);
}

export function registerCaptionApi(app: FastifyInstance, o: CaptionApiOptions, assetId: (raw: string) => string) {
  app.get<{ Params: { id: string } }>('/api/assets/:id/captions', { config: { scope: 'assets:read' } }, async (req) => {
    const id = assetId(req.params.id);
    await assetOrThrow(o.assets, id);
    return { captions: await Promise.all((await o.captions.list(id)).map(o.present)) };
  });

  app.delete<{ Params: { id: string; captionId: string } }>(
    '/api/assets/:id/captions/:captionId',
    { config: { scope: 'assets:write' } },
    async (req, reply) => {
      const id = assetId(req.params.id);
      await assetOrThrow(o.assets, id);
      if (!(await o.captions.remove(id, req.params.captionId))) {
        throw new SmoothcastError('CAPTION_NOT_FOUND', `asset ${id} has no caption ${req.params.captionId}`);
      }
      o.evictText(id);
      await o.storage.remove(keys.caption(id, req.params.captionId)).catch(() => {});
      return reply.code(204).send();
    },
  );

  // The body is the caption file itself, whatever its Content-Type says: parsed as bytes, bounded by maxBytes
  // (Fastify refuses a longer Content-Length before reading it).
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: o.maxBytes }, (_req, body, done) => {
      done(null, body);
    });
    scope.setErrorHandler((err, _req, _reply) => {
      if ((err as { statusCode?: number }).statusCode === 413) {
        throw new SmoothcastError('CAPTION_TOO_LARGE', `the caption file is larger than ${o.maxBytes} bytes`);
      }
      throw err;
    });
    scope.post<{
      Params: { id: string };
      Querystring: { language?: string; label?: string; kind?: string; format?: string };
    }>('/api/assets/:id/captions', { bodyLimit: o.maxBytes, config: { scope: 'assets:write' } }, async (req, reply) => {
      const id = assetId(req.params.id);
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      if (body.length === 0)
        throw new SmoothcastError('CAPTION_INVALID', 'the request body (the caption file) is empty');
      const c = await addCaption(o, id, {
        body,
        language: req.query.language ?? '',
        label: req.query.label,
        kind: req.query.kind,
        format: req.query.format,
      });
      o.evictText(id);
      return reply.code(201).send(await o.present(c));
    });
  });
}
