// Where an encode's files live while it runs. Local storage: in place — ffmpeg writes the final files and the
// origin reads them as they grow (publish while encoding). S3: in a scratch folder of this worker, held
// (src/core/storage/held.ts) so that origins read the growing renditions from this node until they are uploaded —
// each rendition ONE object, multipart — and the asset is published with its holder cleared in the same
// transaction; the scratch files stay served for a grace period, then go.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { HeldFiles } from '../../core/storage/held.ts';
import type { MediaReader, Storage } from '../../core/storage/storage.ts';
import { assertKey } from '../../core/storage/storage.ts';

/** How long a held file stays served after the asset was published from storage (in-flight origin reads). */
export const HOLD_GRACE_MS = 30_000;

export class Workspace {
  readonly #storage: Storage;
  readonly #held: HeldFiles | null;
  readonly #root: string | null;
  readonly #written = new Set<string>();

  constructor(storage: Storage, opts: { held: HeldFiles | null; scratchRoot: string; name: string }) {
    this.#storage = storage;
    this.#held = storage.backend === 'local' ? null : opts.held;
    this.#root = storage.backend === 'local' ? null : join(opts.scratchRoot, 'work', opts.name);
  }

  /** True when the files are written away from storage and must be uploaded (S3). */
  get remote(): boolean {
    return this.#root !== null;
  }

  /** Whether another node can read the held files (a holder URL to advertise), else null. */
  get holds(): boolean {
    return this.#held !== null;
  }

  /** The local path ffmpeg writes `key` to (its folder made). */
  async path(key: string): Promise<string> {
    assertKey(key);
    const path = this.#root ? join(this.#root, key) : this.#storage.localPath(key);
    await mkdir(dirname(path), { recursive: true });
    this.#written.add(key);
    return path;
  }

  /** The path of a key already given out by path(). */
  pathOf(key: string): string {
    return this.#root ? join(this.#root, assertKey(key)) : this.#storage.localPath(key);
  }

  /** Serves the key from this node while it is written (S3). */
  hold(key: string): void {
    this.#held?.hold(key, this.pathOf(key));
  }

  /** What reads the files being written: storage itself (local), or the scratch files. */
  get reader(): MediaReader {
    return this.#held ?? this.#storage;
  }

  /** Files ffmpeg wrote next to a given one (thumbnail sprite sheets next to thumbs.vtt): register them. */
  async adopt(folderKey: string, pattern: RegExp): Promise<string[]> {
    const dir = this.pathOf(`${folderKey}/x`).replace(/\/x$/, '');
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => pattern.test(n)).sort();
    for (const n of names) this.#written.add(assertKey(`${folderKey}/${n}`));
    return names;
  }

  /** Uploads every file written here to storage (S3; local: they are in place already). */
  async upload(onlyKeys?: readonly string[]): Promise<void> {
    if (!this.#root) return;
    for (const key of onlyKeys ?? [...this.#written]) {
      await this.#storage.importFile(this.pathOf(key), key);
    }
  }

  /** After publishing: held files stay served for the grace period, then the scratch folder goes. */
  releaseLater(): void {
    if (!this.#root) return;
    const root = this.#root;
    const keys = [...this.#written];
    const held = this.#held;
    if (!held || keys.length === 0) {
      void rm(root, { recursive: true, force: true }).catch(() => {});
      return;
    }
    for (const k of keys) held.releaseLater(k, HOLD_GRACE_MS);
    setTimeout(() => void rm(root, { recursive: true, force: true }).catch(() => {}), HOLD_GRACE_MS + 1000).unref();
  }

  /** A failed or cancelled attempt: nothing of it is served or kept. */
  async discard(): Promise<void> {
    if (!this.#root) return;
    for (const k of this.#written) this.#held?.release(k);
    await rm(this.#root, { recursive: true, force: true });
  }
}
