// `smoothcast upload FILE… --server URL [--wait] [--json] [--chunk-size BYTES]`: uploads over tus (tus-js-client)
// with a progress bar. The upload URL of each file is remembered (by path, size and mtime) in a state file, so
// running the same command again after an interruption resumes where the server's stored offset says.
import { createReadStream, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import * as tus from 'tus-js-client';
import { Upload, type UploadOptions } from 'tus-js-client';
import type { Config } from '../core/config.ts';
import { titleFromName } from '../core/ingest.ts';
import type { AssetJson } from '../roles/api/present.ts';
import { bearer, cliToken } from './accounts.ts';
import type { Cli } from './main.ts';
import { ProgressBars } from './progress-bar.ts';

type UrlStorage = NonNullable<UploadOptions['urlStorage']>;
// tus-js-client's Node build exports FileUrlStorage (a JSON file with a lock) but its typings do not declare it.
const { FileUrlStorage } = tus as unknown as { FileUrlStorage: new (path: string) => UrlStorage };

/** Where upload URLs are remembered: --state FILE, else $XDG_STATE_HOME or ~/.local/state. */
export function uploadStateFile(flag?: string): string {
  if (flag) return resolve(flag);
  const base = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'smoothcast', 'uploads.json');
}

function fail(json: boolean, file: string, code: string, message: string): void {
  if (json) console.log(JSON.stringify({ file, error: { code, message } }));
  else console.error(`smoothcast upload: ${file}: ${code}: ${message}`);
}

async function getAsset(uploadUrl: string, auth: Record<string, string>): Promise<AssetJson> {
  const res = await fetch(`${uploadUrl}/asset`, { headers: auth });
  const body = (await res.json()) as AssetJson & { error?: { code: string; message: string } };
  if (!res.ok) throw Object.assign(new Error(body.error?.message ?? `HTTP ${res.status}`), { code: body.error?.code });
  return body;
}

/** Follows an asset until ready or failed, drawing its encoding progress. */
async function follow(
  server: string,
  asset: AssetJson,
  bars: ProgressBars,
  auth: Record<string, string>,
): Promise<AssetJson> {
  let a = asset;
  for (;;) {
    bars.update(a.id, {
      label: a.title,
      percent: a.status === 'ready' ? 100 : (a.progress?.percent ?? 0),
      status: a.status,
      speed: a.progress?.speed ?? null,
      etaSeconds: a.progress?.etaSeconds ?? null,
    });
    if (a.status === 'ready' || a.status === 'failed') return a;
    await new Promise((r) => setTimeout(r, 500));
    const res = await fetch(`${server}/api/assets/${a.id}`, { headers: auth });
    if (!res.ok) throw new Error(`asset ${a.id}: HTTP ${res.status} (deleted?)`);
    a = (await res.json()) as AssetJson;
  }
}

function uploadOne(
  file: string,
  endpoint: string,
  opts: { chunkSize: number; storage: UrlStorage; bars: ProgressBars; json: boolean; auth: Record<string, string> },
): Promise<{ url: string; resumedFrom: number }> {
  const size = statSync(file).size;
  const name = basename(file);
  const started = Date.now();
  let resumedFrom: number | null = null;
  return new Promise((done, reject) => {
    const upload: Upload = new Upload(createReadStream(file), {
      endpoint,
      headers: opts.auth,
      uploadSize: size,
      chunkSize: opts.chunkSize,
      metadata: { filename: name, title: titleFromName(name) },
      urlStorage: opts.storage,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      onBeforeRequest: (req) => {
        // The first PATCH's offset is where this run starts: 0 for a new upload, the server's offset on a resume.
        if (resumedFrom === null && req.getMethod() === 'PATCH') resumedFrom = Number(req.getHeader('Upload-Offset'));
      },
      onProgress: (sent, total) => {
        const elapsed = (Date.now() - started) / 1000;
        const rate = elapsed > 0 ? (sent - (resumedFrom ?? 0)) / elapsed : 0;
        opts.bars.update(file, {
          label: name,
          percent: total ? (sent / total) * 100 : 0,
          status: `uploading ${(sent / 2 ** 20).toFixed(0)}/${(total / 2 ** 20).toFixed(0)} MiB ${(rate / 2 ** 20).toFixed(1)} MiB/s`,
          etaSeconds: rate > 0 ? (total - sent) / rate : null,
        });
      },
      onError: (err) => reject(err),
      onSuccess: () => done({ url: upload.url ?? '', resumedFrom: resumedFrom ?? size }),
    });
    upload
      .findPreviousUploads()
      .then((previous) => {
        const last = previous.at(-1);
        if (last) {
          upload.resumeFromPreviousUpload(last);
          if (!opts.json) console.error(`smoothcast upload: ${name}: resuming the upload started ${last.creationTime}`);
        }
        upload.start();
      })
      .catch(reject);
  });
}

export async function uploadCommand(_config: Config, cli: Cli): Promise<number> {
  const server = String(cli.values.server ?? '').replace(/\/+$/, '');
  if (!/^https?:\/\/[^\s]+$/.test(server) || cli.positionals.length === 0) {
    console.error('usage: smoothcast upload FILE… --server URL [--wait] [--json] [--chunk-size BYTES] [--state FILE]');
    return 2;
  }
  const json = Boolean(cli.values.json);
  const chunkSize =
    cli.values['chunk-size'] === undefined ? Number.POSITIVE_INFINITY : Number(cli.values['chunk-size']);
  if (!(chunkSize >= 1)) {
    console.error('smoothcast upload: --chunk-size must be a positive number of bytes');
    return 2;
  }
  const stateFile = uploadStateFile(typeof cli.values.state === 'string' ? cli.values.state : undefined);
  mkdirSync(dirname(stateFile), { recursive: true });
  const storage = new FileUrlStorage(stateFile);
  const bars = new ProgressBars(process.stderr);
  const auth = bearer(cliToken(cli));
  let failed = 0;
  for (const file of cli.positionals) {
    try {
      statSync(file);
    } catch {
      failed++;
      fail(json, file, 'MEDIA_NOT_FOUND', 'cannot read the file');
      continue;
    }
    try {
      const { url, resumedFrom } = await uploadOne(file, `${server}/api/uploads`, {
        chunkSize,
        storage,
        bars,
        json,
        auth,
      });
      const absolute = new URL(url, server).href;
      let asset = await getAsset(absolute, auth);
      if (cli.values.wait) asset = await follow(server, asset, bars, auth);
      const playback = (u: string | null) => (u ? new URL(u, `${server}/`).href : null);
      if (json) console.log(JSON.stringify({ ...asset, upload: { url: absolute, resumedFrom } }));
      else if (asset.status === 'ready') {
        console.log(
          `ready ${asset.id}  ${asset.title}\n  HLS:  ${playback(asset.playback.hls)}\n  DASH: ${playback(asset.playback.dash)}`,
        );
      } else if (asset.status === 'failed') {
        console.log(`failed ${asset.id}  ${asset.title}: ${asset.error?.code}: ${asset.error?.message}`);
      } else console.log(`uploaded ${asset.id}  ${asset.title} (${asset.status}); ${server}/api/assets/${asset.id}`);
      if (asset.status === 'failed') failed++;
    } catch (err) {
      failed++;
      const e = err as { code?: string; message?: string };
      fail(json, file, e.code ?? 'UPLOAD_FAILED', e.message ?? String(err));
    }
  }
  return failed ? 1 : 0;
}
