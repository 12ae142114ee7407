// The Live page: the live streams (publishing points) with their state, a form to create one, and a stream's own
// page: what to type into OBS (or the ffmpeg command line, the SRT URL), a preview player of what viewers get,
// the input's figures and the viewers from the stream's Server-Sent Events, start/stop/shutdown (stop and shutdown
// confirmed), rotating the key, deleting, and push targets. Every API error is shown as `CODE: message`.
//
// A stream's playback policy (public or signed) and viewer limit are changed in its settings; a signed stream's
// preview plays with a playback token of the current event.
//
// The pages are /live (the list) and /live/<id> (a stream); main.ts also takes the older /?live and /?live=<id>.
import type shaka from 'shaka-player/dist/shaka-player.compiled.js';
import {
  api,
  can,
  el,
  errorText,
  type LiveAction,
  type LiveStats,
  type LiveStream,
  liveApi,
  type Me,
  type PlaybackPolicy,
  readableError,
} from './api.ts';
import { field, notes } from './ui.ts';
import { createPlayer, errorCode, mbps, refusalText, withToken } from './watch.ts';

export function liveHref(id?: string): string {
  return id ? `/live/${encodeURIComponent(id)}` : '/live';
}

const STATE_TEXT: Record<LiveStream['state'], string> = {
  idle: 'idle',
  starting: 'starting',
  started: 'live',
  stopped: 'stopped',
  shutdown: 'shut down',
};

function badge(s: Pick<LiveStream, 'state'>): HTMLElement {
  return el('span', { class: `badge state ${s.state}`, 'data-state': s.state, text: STATE_TEXT[s.state] });
}

function duration(seconds: number): string {
  if (seconds === 0) return 'whole event';
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

const abs = (u: string) => new URL(u, location.origin).href;

function copy(value: string, field: HTMLInputElement | HTMLElement, btn: HTMLButtonElement): void {
  const done = () => {
    btn.textContent = 'Copied';
    setTimeout(() => {
      btn.textContent = 'Copy';
    }, 2000);
  };
  if (field instanceof HTMLInputElement) field.select();
  // The Clipboard API needs a secure context (https or localhost); a LAN address over http gets the old way.
  if (navigator.clipboard) void navigator.clipboard.writeText(value).then(done, () => {});
  else if (document.execCommand('copy')) done();
}

/** A labelled read-only field with a Copy button, whose value can change (a rotated key). */
function copyField(label: string, name: string): { row: HTMLElement; set(value: string): void } {
  const field = el('input', {
    type: 'text',
    readonly: '',
    'aria-label': label,
    'data-field': name,
    spellcheck: 'false',
  });
  const btn = el('button', { type: 'button', 'aria-label': `Copy ${label}` }, 'Copy');
  btn.addEventListener('click', () => copy(field.value, field, btn));
  return {
    row: el('div', { class: 'copy' }, el('span', { class: 'label', text: label }), field, btn),
    set(value) {
      field.value = value;
    },
  };
}

/** A command line: shown whole (it wraps), with a Copy button. */
function copyBlock(label: string, name: string): { row: HTMLElement; set(value: string): void } {
  const code = el('code', { 'data-field': name });
  const btn = el('button', { type: 'button', 'aria-label': `Copy ${label}` }, 'Copy');
  btn.addEventListener('click', () => {
    getSelection()?.selectAllChildren(code);
    copy(code.textContent ?? '', code, btn);
  });
  return {
    row: el('div', { class: 'command' }, el('pre', { 'aria-label': label }, code), btn),
    set(value) {
      code.textContent = value;
    },
  };
}

/** ffmpeg publishing a file as if it were a camera: H.264 + AAC in FLV, a keyframe every 2 s at 30 fps. */
function ffmpegCommand(s: LiveStream): string {
  return `ffmpeg -re -i input.mp4 -c:v libx264 -preset veryfast -tune zerolatency -g 60 -c:a aac -ar 48000 -b:a 128k -f flv "${s.ingest.rtmp}"`;
}

// ---- the list and the create form ----------------------------------------------------------------------------

function streamRow(s: LiveStream): HTMLElement {
  const settings = [
    `${s.latency} latency`,
    `DVR ${duration(s.dvrWindowSeconds)}`,
    s.archive ? 'archived' : 'not archived',
  ].join(' · ');
  return el(
    'li',
    { class: 'stream', 'data-id': s.id, 'data-state': s.state },
    el('div', { class: 'row' }, el('h3', {}, el('a', { href: liveHref(s.id), text: s.title })), badge(s)),
    el(
      'p',
      { class: 'meta' },
      settings,
      ' · created ',
      el('time', { datetime: s.createdAt, text: new Date(s.createdAt).toLocaleString() }),
    ),
    ...(s.state === 'started' && s.currentAssetId
      ? [el('p', { class: 'meta' }, el('a', { href: `/watch/${s.currentAssetId}`, text: 'Watch the event' }))]
      : []),
  );
}

function createForm(onCreated: (s: LiveStream) => void): HTMLElement {
  const title = el('input', { type: 'text', name: 'title', id: 'live-title', required: '', maxlength: '200' });
  title.placeholder = 'Sunday service, match day, launch event…';
  const dvr = el(
    'select',
    { name: 'dvr', id: 'live-dvr' },
    ...[
      [300, '5 minutes'],
      [1800, '30 minutes'],
      [7200, '2 hours'],
      [21600, '6 hours'],
      [0, 'The whole event'],
    ].map(([v, t]) => el('option', { value: String(v), text: String(t) })),
  );
  dvr.value = '7200';
  const radio = (value: string, text: string, hint: string) => {
    const input = el('input', { type: 'radio', name: 'latency', value });
    if (value === 'low') input.checked = true;
    return el('label', { class: 'choice' }, input, ` ${text} `, el('span', { class: 'hint', text: hint }));
  };
  const archive = el('input', { type: 'checkbox', name: 'archive', id: 'live-archive' });
  archive.checked = true;
  const submit = el('button', { type: 'submit', class: 'primary' }, 'Create stream');
  const message = el('p', { class: 'message', role: 'alert' });
  const form = el(
    'form',
    { class: 'create-live', 'aria-labelledby': 'create-live-h' },
    el('h2', { id: 'create-live-h', text: 'New live stream' }),
    el('div', { class: 'field' }, el('label', { for: 'live-title', text: 'Title' }), title),
    el(
      'div',
      { class: 'field' },
      el('label', { for: 'live-dvr', text: 'DVR window' }),
      dvr,
      el('span', { class: 'hint', text: 'how far back viewers can seek while it is live' }),
    ),
    el(
      'fieldset',
      { class: 'field' },
      el('legend', { text: 'Latency' }),
      radio('low', 'Low', '(LL-HLS parts)'),
      radio('standard', 'Standard', '(whole segments; steadier on poor networks)'),
    ),
    el(
      'div',
      { class: 'field' },
      el('label', { class: 'choice' }, archive, ' Keep the event as a video in the library when it ends'),
    ),
    el('div', { class: 'buttons' }, submit),
    message,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    message.textContent = '';
    submit.disabled = true;
    const latency = (form.querySelector('input[name="latency"]:checked') as HTMLInputElement | null)?.value;
    liveApi
      .create({
        title: title.value.trim(),
        dvrWindowSeconds: Number(dvr.value),
        latency: latency === 'standard' ? 'standard' : 'low',
        archive: archive.checked,
      })
      .then(onCreated, (err) => {
        message.textContent = `Could not create the stream: ${errorText(err)}`;
      })
      .finally(() => {
        submit.disabled = false;
      });
  });
  return form;
}

export async function renderLiveList(app: HTMLElement): Promise<void> {
  const list = el('ul', { class: 'streams', 'aria-label': 'Live streams' });
  const note = el('p', { class: 'message', role: 'alert' });
  app.replaceChildren(
    el('h1', { text: 'Live' }),
    el(
      'p',
      { class: 'lead' },
      'Publish from OBS, ffmpeg or any RTMP or SRT encoder. Each broadcast becomes an event viewers watch live and, when it is shut down, a video in the ',
      el('a', { href: '/library', text: 'library' }),
      '.',
    ),
    el(
      'div',
      { class: 'live-list' },
      el(
        'section',
        { class: 'list', 'aria-labelledby': 'streams-h' },
        el('h2', { id: 'streams-h', text: 'Streams' }),
        note,
        list,
      ),
      createForm((s) => location.assign(liveHref(s.id))),
    ),
  );
  let shown = '';
  const draw = async () => {
    try {
      const streams = await liveApi.list();
      note.textContent = '';
      // Redrawn only when something shown changed (a redraw would take the keyboard focus off a link).
      const now = JSON.stringify(streams.map((s) => [s.id, s.title, s.state, s.currentAssetId]));
      if (now === shown) return;
      shown = now;
      list.replaceChildren(...streams.map(streamRow));
      if (!streams.length) list.append(el('li', { class: 'empty', text: 'No live streams yet: create one.' }));
    } catch (err) {
      note.textContent = `Could not load the live streams: ${errorText(err)}`;
    }
  };
  await draw();
  // States change under the page (a publisher connects): redraw every few seconds.
  setInterval(() => void draw(), 4000);
}

// ---- one stream ----------------------------------------------------------------------------------------------

const CONFIRM: Partial<Record<LiveAction | 'delete', (s: LiveStream) => string>> = {
  stop: (s) =>
    `Stop “${s.title}”? The publisher is disconnected and ingest is refused until you start the stream again; viewers can still play the DVR window.`,
  shutdown: (s) =>
    `Shut down “${s.title}”? The event ends${s.archive ? ' and becomes a video in the library' : ' and its media is deleted (archive is off)'}. Starting again begins a new event.`,
  'rotate-key': (s) =>
    `Rotate the stream key of “${s.title}”? The current key stops working at once; encoders need the new one to connect again.`,
  delete: (s) => `Delete the live stream “${s.title}”? Its stream key stops working. This cannot be undone.`,
};

/** Which actions the state allows (the server decides; this only greys out what it would refuse). */
function allowed(s: LiveStream): Record<LiveAction | 'delete', boolean> {
  const publishing = s.state === 'starting' || s.state === 'started';
  return {
    start: s.state === 'stopped' || s.state === 'shutdown',
    stop: publishing,
    shutdown: s.state !== 'shutdown',
    'rotate-key': true,
    delete: !publishing,
  };
}

function statsRows(): { dl: HTMLElement; set(stats: LiveStats | null): void } {
  const items = {
    bitrate: el('dd', { 'data-stat': 'bitrate', text: '–' }),
    fps: el('dd', { 'data-stat': 'fps', text: '–' }),
    resolution: el('dd', { 'data-stat': 'resolution', text: '–' }),
    viewers: el('dd', { 'data-stat': 'viewers', text: '–' }),
    latency: el('dd', { 'data-stat': 'latency', text: '–' }),
  };
  const dl = el(
    'dl',
    { class: 'live-stats', 'aria-label': 'Input and viewers', 'aria-live': 'off' },
    el('div', {}, el('dt', { text: 'Input' }), items.bitrate),
    el('div', {}, el('dt', { text: 'Frame rate' }), items.fps),
    el('div', {}, el('dt', { text: 'Resolution' }), items.resolution),
    el('div', {}, el('dt', { text: 'Viewers' }), items.viewers),
    el(
      'div',
      { title: 'How far the newest media on the server is behind real time (before any player buffering)' },
      el('dt', { text: 'Latency' }),
      items.latency,
    ),
  );
  return {
    dl,
    set(st) {
      items.bitrate.textContent = st ? mbps(st.inputBitrate) : '–';
      items.fps.textContent = st ? `${st.inputFps.toFixed(st.inputFps % 1 ? 1 : 0)} fps` : '–';
      items.resolution.textContent = st?.inputWidth && st.inputHeight ? `${st.inputWidth}×${st.inputHeight}` : '–';
      items.viewers.textContent = st ? String(st.viewers) : '–';
      items.latency.textContent = st?.latencySeconds != null ? `${st.latencySeconds.toFixed(1)} s` : '–';
    },
  };
}

/** A stream's playback policy and viewer limit (PATCH /api/live/:id); they carry over to each event. */
function accessForm(s: LiveStream, onSaved: (s: LiveStream) => void): HTMLElement {
  const policy = el(
    'select',
    { name: 'playbackPolicy' },
    el('option', { value: 'public', text: 'Public' }),
    el('option', { value: 'signed', text: 'Signed links only' }),
  );
  policy.value = s.playbackPolicy ?? 'public';
  const limit = el('input', { type: 'number', name: 'maxViewers', min: '1', step: '1', inputmode: 'numeric' });
  limit.placeholder = 'no limit';
  limit.value = s.maxViewers ? String(s.maxViewers) : '';
  const save = el('button', { type: 'submit' }, 'Save');
  const n = notes();
  const form = el(
    'form',
    { class: 'stream-access', 'aria-label': 'Playback access' },
    field('Playback', policy),
    field('Viewer limit', limit, 'at most this many watch at once; empty: no limit'),
    el('div', { class: 'buttons' }, save),
    n.status,
    n.alert,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    n.clear();
    save.disabled = true;
    liveApi
      .update(s.id, {
        playbackPolicy: policy.value as PlaybackPolicy,
        maxViewers: limit.value.trim() ? Number(limit.value) : null,
      })
      .then((next) => {
        n.status.textContent = 'Saved.';
        onSaved(next);
      })
      .catch((err) => {
        n.alert.textContent = `Could not save: ${readableError(err)}`;
      })
      .finally(() => {
        save.disabled = false;
      });
  });
  return form;
}

export async function renderLiveStream(app: HTMLElement, id: string, m: Me): Promise<void> {
  let s: LiveStream;
  try {
    s = await liveApi.get(id);
  } catch (err) {
    app.replaceChildren(
      el('p', { class: 'back' }, el('a', { href: liveHref(), text: '← All live streams' })),
      el('h1', { text: 'Live stream not found' }),
      el('p', { class: 'message', role: 'alert', text: errorText(err) }),
    );
    return;
  }
  const heading = el('h1', { class: 'stream-title' });
  const reconnect = el('p', { class: 'reconnect', role: 'status', hidden: '' });
  const message = el('p', { class: 'message', role: 'alert' });
  const status = el('p', { class: 'done', role: 'status', 'aria-live': 'polite' });

  // Actions.
  const buttons = {} as Record<LiveAction | 'delete', HTMLButtonElement>;
  const labels: [LiveAction | 'delete', string][] = [
    ['start', 'Start'],
    ['stop', 'Stop'],
    ['shutdown', 'Shut down'],
    ['rotate-key', 'Rotate key'],
    ['delete', 'Delete'],
  ];
  for (const [action, text] of labels) {
    const b = el('button', { type: 'button', class: `act ${action}`, 'data-action': action }, text);
    b.addEventListener('click', () => void act(action));
    buttons[action] = b;
  }
  buttons.delete.classList.add('danger');
  let busy = false;
  let gone = false;
  const act = async (action: LiveAction | 'delete') => {
    const ask = CONFIRM[action];
    if (ask && !confirm(ask(s))) return;
    message.textContent = '';
    status.textContent = '';
    busy = true;
    draw(s);
    try {
      if (action === 'delete') {
        await liveApi.remove(s.id);
        gone = true;
        location.assign(liveHref());
        return;
      }
      draw(await liveApi.act(s.id, action));
      if (action === 'rotate-key') status.textContent = 'New stream key: update your encoder.';
    } catch (err) {
      message.textContent = errorText(err);
    } finally {
      busy = false;
      if (!gone) draw(s);
    }
  };

  // Preview.
  // Native controls once there is something to play (mute, fullscreen; the watch page has the full player).
  const video = el('video', { muted: '', autoplay: '', playsinline: '', 'aria-label': 'Preview' });
  video.muted = true;
  const previewNote = el('p', { class: 'preview-note', role: 'status' });
  const previewMessage = el('p', { class: 'message', role: 'alert' });
  const format = el(
    'select',
    { class: 'preview-format', 'aria-label': 'Preview delivery' },
    el('option', { value: 'hls', text: 'HLS' }),
    el('option', { value: 'dash', text: 'DASH' }),
  );
  const watchLink = el('a', { class: 'watch-event', hidden: '', text: 'Open the event’s watch page' });
  const frame = el('div', { class: 'player live-preview' }, video);
  const stats = statsRows();

  // OBS, ffmpeg, other inputs, playback.
  const obsServer = copyField('Server', 'obs-server');
  const obsKey = copyField('Stream Key', 'obs-key');
  const ffmpeg = copyBlock('ffmpeg command', 'ffmpeg');
  const rtmp = copyField('RTMP URL', 'rtmp');
  const srt = copyField('SRT URL', 'srt');
  const srtNone = el('p', { class: 'hint', text: 'SRT: none (no SRT port was free when this stream was created).' });
  const http = copyField('HTTP push', 'http');
  const hls = copyField('HLS', 'hls');
  const dash = copyField('DASH', 'dash');
  const smooth = copyField('Smooth', 'smooth');

  // Push targets.
  const targets = el('ul', { class: 'targets', 'aria-label': 'Push targets' });
  const targetUrl = el('input', { type: 'url', name: 'url', required: '', 'aria-label': 'Push target URL' });
  targetUrl.placeholder = 'rtmp://a.rtmp.youtube.com/live2/your-key';
  const targetMessage = el('p', { class: 'message', role: 'alert' });
  const targetForm = el(
    'form',
    { class: 'add-target' },
    targetUrl,
    el('button', { type: 'submit', text: 'Add target' }),
  );
  targetForm.addEventListener('submit', (e) => {
    e.preventDefault();
    targetMessage.textContent = '';
    liveApi
      .addTarget(s.id, targetUrl.value.trim())
      .then(async () => {
        targetUrl.value = '';
        draw(await liveApi.get(s.id));
      })
      .catch((err) => {
        targetMessage.textContent = `Could not add the target: ${errorText(err)}`;
      });
  });
  const drawTargets = () => {
    targets.replaceChildren(
      ...s.targets.map((t) => {
        const remove = el('button', { type: 'button', class: 'remove', 'aria-label': `Remove ${t.url}` }, 'Remove');
        remove.addEventListener('click', () => {
          if (!confirm(`Stop pushing to ${t.url} and remove it?`)) return;
          targetMessage.textContent = '';
          liveApi
            .removeTarget(s.id, t.id)
            .then(async () => draw(await liveApi.get(s.id)))
            .catch((err) => {
              targetMessage.textContent = `Could not remove the target: ${errorText(err)}`;
            });
        });
        return el(
          'li',
          { class: 'target', 'data-id': t.id, 'data-state': t.state },
          el('code', { class: 'url', text: t.url }),
          el('span', { class: `badge target-state ${t.state}`, text: t.state }),
          ...(t.error ? [el('span', { class: 'error', text: t.error })] : []),
          remove,
        );
      }),
    );
    if (!s.targets.length)
      targets.append(el('li', { class: 'empty', text: 'None: the stream goes to this server only.' }));
  };

  const settings = el('dl', { class: 'settings' });
  const access = s.playbackPolicy !== undefined && can(m, 'live:write') ? accessForm(s, (next) => draw(next)) : null;

  app.replaceChildren(
    el('p', { class: 'back' }, el('a', { href: liveHref(), text: '← All live streams' })),
    heading,
    reconnect,
    el('div', { class: 'actions', role: 'group', 'aria-label': 'Stream actions' }, ...Object.values(buttons)),
    message,
    status,
    el(
      'div',
      { class: 'live-stream' },
      el(
        'div',
        { class: 'column' },
        el(
          'section',
          { class: 'preview-section', 'aria-labelledby': 'preview-h' },
          el('div', { class: 'row' }, el('h2', { id: 'preview-h', text: 'Preview' }), format),
          frame,
          previewNote,
          previewMessage,
          stats.dl,
          watchLink,
        ),
        el(
          'section',
          { class: 'push', 'aria-labelledby': 'targets-h' },
          el('h2', { id: 'targets-h', text: 'Push targets' }),
          el('p', {
            class: 'hint',
            text: 'Forward the stream as it arrives to other RTMP servers (YouTube, Twitch, …).',
          }),
          targets,
          targetForm,
          targetMessage,
        ),
      ),
      el(
        'section',
        { class: 'ingest', 'aria-labelledby': 'obs-h' },
        el('h2', { id: 'obs-h', text: 'OBS' }),
        el('p', { class: 'hint' }, 'OBS → Settings → Stream → Service: ', el('strong', { text: 'Custom' }), ', then:'),
        obsServer.row,
        obsKey.row,
        el('h2', { text: 'ffmpeg' }),
        ffmpeg.row,
        el('h2', { text: 'Other inputs' }),
        rtmp.row,
        srt.row,
        srtNone,
        http.row,
        el('h2', { text: 'Playback' }),
        el('p', { class: 'hint', text: 'These follow the stream from event to event.' }),
        hls.row,
        dash.row,
        smooth.row,
      ),
    ),
    el(
      'section',
      { class: 'stream-settings', 'aria-labelledby': 'settings-h' },
      el('h2', { id: 'settings-h', text: 'Settings' }),
      settings,
      ...(access ? [access] : []),
    ),
  );

  // The player: loaded when the stream is on (and again for a new event), unloaded when the event is over.
  let player: shaka.Player | null = null;
  let loaded: string | null = null;
  let failed: string | null = null;
  let loading = false;
  const loadPreview = async () => {
    if (loading || !s.currentAssetId || s.state !== 'started') return;
    const key = `${s.currentAssetId}|${format.value}|${s.playbackPolicy}`;
    if (key === loaded || key === failed) return;
    loading = true;
    previewMessage.textContent = '';
    try {
      player ??= await createPlayer(frame, video, previewMessage);
      if (!player) return;
      (window as unknown as { smoothcastPreview: shaka.Player }).smoothcastPreview = player;
      let src = format.value === 'hls' ? s.playback.hls : s.playback.dash;
      // A signed stream: the current event's manifest with a playback token (the origin puts it into the rest).
      if (s.playbackPolicy === 'signed') {
        const grant = await api.playbackToken(s.currentAssetId);
        src = (format.value === 'hls' ? grant.playback.hls : grant.playback.dash) ?? withToken(src, grant.token);
      }
      // A low-latency stream: Shaka follows its LL-HLS parts (or the MPD's low-latency targets) near the edge.
      // No probing of a segment for CEA-608 captions: Shaka 5 would probe the segment still being written (parts
      // only, no URI) and fail until two whole segments are there.
      player.configure({
        streaming: { lowLatencyMode: s.latency === 'low' },
        manifest: { hls: { disableClosedCaptionsDetection: true } },
      });
      // Until the first whole segment is there (about 2 s after the first media) loading fails: the MPD is not
      // served yet, and Shaka cannot read an LL-HLS playlist of parts only. So a few tries. (HLS is the default
      // as its playlists are served from the first part, so the browser logs no refused request meanwhile.)
      for (let attempt = 0; ; attempt++) {
        try {
          await player.load(abs(src));
          break;
        } catch (err) {
          if (attempt >= 15) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      loaded = key;
      video.controls = true;
      void video.play().catch(() => {});
    } catch (err) {
      failed = key;
      previewMessage.textContent = `Could not load the preview: ${refusalText(err) ?? errorCode(err)}`;
    } finally {
      loading = false;
    }
    // The format or the event changed meanwhile.
    if (s.state === 'started' && `${s.currentAssetId}|${format.value}|${s.playbackPolicy}` !== key) void loadPreview();
  };
  format.addEventListener('change', () => void loadPreview());

  let commandFor = '';
  function draw(next: LiveStream): void {
    s = next;
    document.title = `${s.title} · Live · smoothcast`;
    heading.replaceChildren(s.title, ' ', badge(s));
    app.dataset.state = s.state;
    reconnect.hidden = !s.reconnectDeadline;
    if (s.reconnectDeadline) {
      reconnect.textContent = `The publisher dropped: the event goes on if it is back by ${new Date(s.reconnectDeadline).toLocaleTimeString()}.`;
    }
    const can = allowed(s);
    for (const [action, b] of Object.entries(buttons) as [LiveAction | 'delete', HTMLButtonElement][]) {
      b.disabled = busy || gone || !can[action];
    }
    obsServer.set(s.obs.server);
    obsKey.set(s.obs.streamKey);
    if (commandFor !== s.ingest.rtmp) {
      commandFor = s.ingest.rtmp;
      ffmpeg.set(ffmpegCommand(s));
    }
    rtmp.set(s.ingest.rtmp);
    srt.row.hidden = !s.ingest.srt;
    srtNone.hidden = !!s.ingest.srt;
    srt.set(s.ingest.srt ?? '');
    http.set(s.ingest.http);
    hls.set(abs(s.playback.hls));
    dash.set(abs(s.playback.dash));
    smooth.set(abs(s.playback.smooth));
    drawTargets();
    const rows: [string, string][] = [
      ['DVR window', duration(s.dvrWindowSeconds)],
      ['Latency', s.latency],
      ['Archive', s.archive ? 'kept as a video when shut down' : 'deleted when shut down'],
      ['Reconnect window', `${s.reconnectWindowSeconds} s`],
      ['Transcode', s.transcode === null ? 'server default' : s.transcode ? 'on' : 'off (input kept as is)'],
      ...(s.playbackPolicy !== undefined
        ? ([
            ['Playback', s.playbackPolicy === 'signed' ? 'signed links only' : 'public'],
            ['Viewer limit', s.maxViewers ? String(s.maxViewers) : 'none'],
          ] as [string, string][])
        : []),
      ['Created', new Date(s.createdAt).toLocaleString()],
    ];
    settings.replaceChildren(...rows.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: v }))));
    // Preview and its note.
    watchLink.hidden = !s.currentAssetId || s.state === 'idle';
    if (s.currentAssetId) watchLink.href = `/watch/${s.currentAssetId}`;
    previewNote.textContent = {
      idle: 'Waiting for the encoder: start streaming in OBS or run the ffmpeg command.',
      starting: 'The encoder is connected; the first media is on its way…',
      started: '',
      stopped: 'Stopped: ingest is refused until you start the stream; viewers can still play the DVR window.',
      shutdown:
        s.archive && s.currentAssetId ? 'The event is over; its video is in the library.' : 'The event is over.',
    }[s.state];
    if (s.state === 'started') void loadPreview();
    else if ((s.state === 'shutdown' || s.state === 'idle') && player && loaded) {
      loaded = null;
      void player.unload().catch(() => {});
    }
    if (!s.stats) stats.set(null);
  }
  draw(s);
  stats.set(s.stats);

  const stop = liveApi.follow(s.id, {
    state: (next) => {
      if (!gone) draw(next);
    },
    stats: (st) => stats.set(st),
    deleted: () => {
      gone = true;
      message.textContent = 'This live stream was deleted.';
      draw(s);
    },
  });
  addEventListener('pagehide', stop);
  // A target's state changes without the stream changing: look again every few seconds while there are any.
  setInterval(() => {
    if (gone || !s.targets.length) return;
    liveApi.get(s.id).then(draw, () => {});
  }, 3000);
}
