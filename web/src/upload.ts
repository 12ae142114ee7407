// The upload page: pick or drop several files; each uploads over tus (tus-js-client) with bytes, speed, time
// left, pause/resume/cancel; then its encoding progress arrives over SSE and a Watch link appears as soon as the
// asset is playable. An upload interrupted by a reload resumes when the same file is chosen again. The tus
// requests carry the session cookie and, on POST/PATCH/DELETE, the session's CSRF token (x-csrf-token).
import * as tus from 'tus-js-client';
import { ApiError, api, bytes, can, clock, csrfToken, el, type Me, readableError, signInHref, statusText } from './api.ts';

function titleOf(name: string): string {
  return name.replace(/\.[^.]+$/, '').replace(/_+/g, ' ').trim() || 'untitled';
}

/** The API's `{error:{code,message}}` of a refused tus request, if that is what failed. */
function apiErrorOf(err: Error): ApiError | null {
  const res = (err as tus.DetailedError).originalResponse;
  if (!res) return null;
  try {
    const body = JSON.parse(res.getBody()) as { error?: { code?: string; message?: string } };
    return body.error?.code ? new ApiError(body.error.code, body.error.message ?? '', res.getStatus()) : null;
  } catch {
    return null;
  }
}

class FileUpload {
  readonly card: HTMLElement;
  private readonly bar: HTMLProgressElement;
  private readonly figures: HTMLElement;
  private readonly state: HTMLElement;
  private readonly pauseBtn: HTMLButtonElement;
  private readonly cancelBtn: HTMLButtonElement;
  private readonly upload: tus.Upload;
  private paused = false;
  private done = false;
  /** Where the speed is measured from: the first progress report since the upload (re)started. */
  private rateFrom: { at: number; bytes: number } | null = null;

  constructor(private readonly file: File) {
    const id = `u${Math.random().toString(36).slice(2, 8)}`;
    this.bar = el('progress', { max: '100', value: '0', id: `${id}-bar`, 'aria-label': `Upload of ${file.name}` });
    this.figures = el('span', { class: 'figures', 'aria-live': 'off', text: `0 / ${bytes(file.size)}` });
    this.state = el('p', { class: 'state', role: 'status', 'aria-live': 'polite', text: 'Starting…' });
    this.pauseBtn = el('button', { type: 'button', class: 'pause', 'aria-label': `Pause upload of ${file.name}` }, 'Pause');
    this.cancelBtn = el('button', { type: 'button', class: 'cancel', 'aria-label': `Cancel upload of ${file.name}` }, 'Cancel');
    this.card = el(
      'li',
      { class: 'upload', 'data-file': file.name },
      el('div', { class: 'row' }, el('strong', { class: 'name', text: file.name }), this.figures),
      this.bar,
      el('div', { class: 'row' }, this.state, el('span', { class: 'buttons' }, this.pauseBtn, this.cancelBtn)),
    );
    this.pauseBtn.addEventListener('click', () => this.togglePause());
    this.cancelBtn.addEventListener('click', () => void this.cancel());

    let assetId: string | null = null;
    this.upload = new tus.Upload(file, {
      endpoint: '/api/uploads',
      metadata: { filename: file.name, title: titleOf(file.name), filetype: file.type },
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      removeFingerprintOnSuccess: true,
      onBeforeRequest: async (req) => {
        if (req.getMethod() === 'GET' || req.getMethod() === 'HEAD') return;
        const token = await csrfToken();
        if (token) req.setHeader('x-csrf-token', token);
      },
      onAfterResponse: (_req, res) => {
        assetId = res.getHeader('Smoothcast-Asset') || assetId;
      },
      onProgress: (sent, total) => this.progress(sent, total),
      onError: (err) => {
        const refused = apiErrorOf(err);
        if (refused?.code === 'AUTH_REQUIRED' || refused?.code === 'AUTH_INVALID') location.assign(signInHref());
        this.state.textContent = `Upload failed: ${refused ? readableError(refused) : String((err as Error).message ?? err).split('\n')[0]}`;
        this.card.classList.add('failed');
        this.pauseBtn.textContent = 'Retry';
        this.paused = true;
      },
      onSuccess: () => void this.uploaded(assetId),
    });
  }

  async start(): Promise<void> {
    const previous = await this.upload.findPreviousUploads();
    const last = previous.at(-1);
    if (last) {
      this.upload.resumeFromPreviousUpload(last);
      this.state.textContent = 'Resuming the earlier upload…';
    }
    this.upload.start();
  }

  private progress(sent: number, total: number): void {
    const now = performance.now();
    this.rateFrom ??= { at: now, bytes: sent };
    const pct = total ? (sent / total) * 100 : 0;
    this.bar.value = pct;
    const elapsed = (now - this.rateFrom.at) / 1000;
    const rate = elapsed > 0.2 ? (sent - this.rateFrom.bytes) / elapsed : 0;
    const left = rate > 0 ? ` · ${clock((total - sent) / rate)} left` : '';
    this.figures.textContent = `${bytes(sent)} / ${bytes(total)} · ${rate ? `${bytes(rate)}/s` : '–'}${left}`;
    this.state.textContent = `Uploading ${pct.toFixed(0)}%`;
  }

  private togglePause(): void {
    if (this.done) return;
    if (this.paused) {
      this.paused = false;
      this.card.classList.remove('failed', 'paused');
      this.pauseBtn.textContent = 'Pause';
      this.pauseBtn.setAttribute('aria-label', `Pause upload of ${this.file.name}`);
      this.rateFrom = null;
      this.upload.start();
    } else {
      this.paused = true;
      this.card.classList.add('paused');
      void this.upload.abort();
      this.pauseBtn.textContent = 'Resume';
      this.pauseBtn.setAttribute('aria-label', `Resume upload of ${this.file.name}`);
      this.state.textContent = `Paused at ${Number(this.bar.value).toFixed(0)}%`;
    }
  }

  private async cancel(): Promise<void> {
    if (this.done) return;
    this.done = true;
    // abort(true) also terminates the upload on the server: its bytes are deleted.
    await this.upload.abort(true).catch(() => {});
    this.card.classList.add('cancelled');
    this.state.textContent = 'Cancelled; the uploaded bytes were deleted';
    this.pauseBtn.disabled = true;
    this.cancelBtn.disabled = true;
  }

  private async uploaded(assetId: string | null): Promise<void> {
    this.done = true;
    this.bar.value = 100;
    this.pauseBtn.remove();
    this.cancelBtn.remove();
    this.state.textContent = 'Uploaded; waiting for the encoder…';
    let id = assetId;
    if (!id && this.upload.url) id = (await api.assetOfUpload(this.upload.url)).id;
    if (!id) return;
    const encoding = el('progress', { max: '100', value: '0', class: 'encode', 'aria-label': `Encoding of ${this.file.name}` });
    const watch = el('a', { class: 'watch', href: `/watch/${id}`, hidden: '' }, 'Watch');
    this.card.append(el('div', { class: 'row' }, encoding, watch));
    api.follow(id, (a) => {
      if (!a) {
        this.state.textContent = 'Deleted';
        return;
      }
      encoding.value = a.status === 'ready' ? 100 : (a.progress?.percent ?? 0);
      this.state.textContent = statusText(a);
      this.card.dataset.status = a.status;
      if (a.playable) watch.hidden = false;
      if (a.status === 'failed') this.card.classList.add('failed');
    });
  }
}

export function renderUpload(app: HTMLElement, m: Me): void {
  if (!can(m, 'uploads:create')) {
    app.replaceChildren(
      el('h1', { text: 'Upload videos' }),
      el('p', {}, 'Your account cannot upload videos. See the ', el('a', { href: '/library', text: 'library' }), '.'),
    );
    return;
  }
  const input = el('input', { type: 'file', id: 'file-input', multiple: '', accept: 'video/*,audio/*,.mkv,.mov,.ts,.flv,.flac,.opus' });
  const zone = el(
    'label',
    { class: 'dropzone', for: 'file-input' },
    el('strong', { text: 'Drop videos here' }),
    el('span', { text: ' or choose files (video, or audio such as music and podcasts)' }),
    input,
  );
  const list = el('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const resumable = el('section', { class: 'resumable', hidden: '' });
  app.replaceChildren(el('h1', { text: 'Upload videos' }), zone, resumable, list);

  const active = new Set<FileUpload>();
  const add = (files: Iterable<File>) => {
    for (const f of files) {
      const u = new FileUpload(f);
      active.add(u);
      list.prepend(u.card);
      void u.start();
    }
  };
  input.addEventListener('change', () => {
    if (input.files) add(input.files);
    input.value = '';
  });
  for (const ev of ['dragenter', 'dragover'] as const) {
    zone.addEventListener(ev, (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
  }
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (e.dataTransfer?.files) add(e.dataTransfer.files);
  });
  window.addEventListener('beforeunload', (e) => {
    if ([...active].some((u) => u.card.querySelector('.pause') && !u.card.classList.contains('paused'))) e.preventDefault();
  });

  // Unfinished uploads from before a reload: choosing the same file again resumes them (browsers do not let a
  // page reopen a file by itself).
  const storage = tus.defaultOptions.urlStorage;
  void storage?.findAllUploads().then((previous) => {
    if (!previous.length) return;
    resumable.hidden = false;
    resumable.append(
      el('h2', { text: 'Unfinished uploads' }),
      el('p', { text: 'Choose the same file again to continue where it stopped:' }),
      el('ul', {}, ...previous.map((p) => el('li', { text: String(p.metadata?.filename ?? 'a file') }))),
    );
  });
}
