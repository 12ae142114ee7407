// The watch page's adaptation (SmoothAbr) in real Chromium against the real platform, in real time (so this file
// runs alone, after the parallel suite): paused after the buffer reached its goal → nothing fetched; hidden →
// fetching stops beyond a small buffer, a fraction of the bytes Shaka's default fetches in the same minute, and
// visible again → playing without a stall; a 640×360 player never gets a rung above 360p, and grown to 1920×1080
// it reaches the top rung within 10 s; a playlist of two assets rolls over with under 100 ms between the last frame
// of one and the first of the next.
//
// Hidden: headless Chromium reports every page visible, so the page's document.visibilityState is overridden by
// an init script and a real `visibilitychange` event is dispatched — what a tab switch delivers to the page.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { launchChromium } from '../helpers/browser.ts';
import { ffmpegFixture } from '../helpers/media.ts';
import { importSettled, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';

const SEGMENT = /\/v\/([a-z0-9]{16})\/[^/]+\/([va][0-9]{1,2})\/(\d+)\.m4s/;

interface Fetch {
  at: number;
  asset: string;
  rendition: string;
  bytes: number;
}

/** Every media segment a page fetched: when, which rendition, how many bytes. */
function track(page: Page): Fetch[] {
  const seen: Fetch[] = [];
  page.on('requestfinished', (req) => {
    const m = SEGMENT.exec(req.url());
    if (!m) return;
    const at = Date.now();
    void req.sizes().then(
      (s) => seen.push({ at, asset: m[1]!, rendition: m[2]!, bytes: s.responseBodySize }),
      () => {},
    );
  });
  return seen;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Seconds buffered ahead of the playhead, the position, and whether it is paused. */
function playState(page: Page) {
  return page.evaluate(() => {
    const v = document.querySelector('video') as HTMLVideoElement;
    let ahead = 0;
    for (let i = 0; i < v.buffered.length; i++) {
      if (v.buffered.start(i) <= v.currentTime + 0.3 && v.buffered.end(i) > v.currentTime) {
        ahead = v.buffered.end(i) - v.currentTime;
      }
    }
    return { ahead, time: v.currentTime, paused: v.paused, duration: v.duration, waiting: v.readyState < 3 };
  });
}

/** Lets the test hide and show the page: visibilityState reads a flag, and a visibilitychange is dispatched. */
function hideable(page: Page) {
  return page.addInitScript(() => {
    let hidden = false;
    Object.defineProperty(document, 'visibilityState', { get: () => (hidden ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { get: () => hidden });
    (window as unknown as { setHidden(h: boolean): void }).setHidden = (h: boolean) => {
      hidden = h;
      document.dispatchEvent(new Event('visibilitychange'));
    };
  });
}

/** Counts `waiting` events after playback started (stalls), in the page. */
function countStalls(page: Page) {
  return page.addInitScript(() => {
    const w = window as unknown as { stalls: number };
    w.stalls = 0;
    document.addEventListener(
      'waiting',
      (e) => {
        const v = e.target as HTMLVideoElement;
        if (v.currentTime > 0.5) w.stalls++;
      },
      true,
    );
  });
}

describe('the watch page adapts with SmoothAbr', () => {
  let p: TestPlatform;
  let browser: Browser;
  let main: AssetJson;
  let second: AssetJson;
  const height = new Map<string, number>();

  before(async () => {
    p = await startTestPlatform({ encode: { preset: 'ultrafast' } });
    // Noise makes every rung spend its bitrate (a flat test pattern would make the rungs nearly the same size).
    const clip = (seconds: number, pattern: string) =>
      ffmpegFixture(
        [
          '-f',
          'lavfi',
          '-i',
          `${pattern}=size=1280x720:rate=30:duration=${seconds}`,
          '-f',
          'lavfi',
          '-i',
          `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
          '-vf',
          'noise=alls=16:allf=t',
          '-c:v',
          'libx264',
          '-preset',
          'ultrafast',
          '-pix_fmt',
          'yuv420p',
          '-c:a',
          'aac',
          '-shortest',
        ],
        'mp4',
      );
    const [a, b] = await Promise.all([clip(120, 'testsrc2'), clip(10, 'testsrc')]);
    main = await importSettled(p, a, 600_000);
    second = await importSettled(p, b, 300_000);
    assert.equal(main.status, 'ready');
    assert.equal(second.status, 'ready');
    for (const r of [...main.renditions, ...second.renditions]) if (r.height) height.set(r.id, r.height);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await p?.stop();
  });

  const open = async (path: string, viewport: { width: number; height: number }, init?: (pg: Page) => unknown) => {
    const ctx = await browser.newContext({ viewport, deviceScaleFactor: 1 });
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await init?.(page);
    const fetched = track(page);
    await page.goto(p.url + path);
    return { page, fetched, errors, close: () => ctx.close() };
  };

  const topRung = () => [...main.renditions].filter((r) => r.height).sort((x, y) => y.bitrate - x.bitrate)[0]!;

  it('paused for 30 s once the buffer reached its goal: no segment fetched', async () => {
    const { page, fetched, close } = await open(`/watch/${main.id}?autoplay=1&muted=1`, { width: 1280, height: 900 });
    try {
      // The goal (60 s for VOD) reached: the buffer holds that much, or the rest of the video; nothing in flight.
      await page.waitForFunction(
        () => {
          const v = document.querySelector('video') as HTMLVideoElement;
          const end = v.buffered.length ? v.buffered.end(v.buffered.length - 1) : 0;
          return v.currentTime > 1 && (end - v.currentTime >= 58 || end >= v.duration - 0.5);
        },
        undefined,
        { timeout: 60_000 },
      );
      await page.evaluate(() => (document.querySelector('video') as HTMLVideoElement).pause());
      await sleep(1000);
      const before = fetched.length;
      await sleep(30_000);
      const state = await playState(page);
      assert.equal(state.paused, true);
      assert.deepEqual(fetched.slice(before), [], 'segments fetched while paused');
      assert.match((await page.locator('.abr-reason').textContent()) ?? '', /paused: small buffer/);
    } finally {
      await close();
    }
  });

  it('hidden: fetching stops beyond a small buffer, ≤ 25 % of the bytes of Shaka’s default; visible: no stall', async () => {
    const init = async (pg: Page) => {
      await hideable(pg);
      await countStalls(pg);
    };
    const ours = await open(`/watch/${main.id}?autoplay=1&muted=1`, { width: 1280, height: 900 }, init);
    const shaka = await open(`/watch/${main.id}?autoplay=1&muted=1&abr=shaka`, { width: 1280, height: 900 }, init);
    try {
      for (const s of [ours, shaka]) {
        await s.page.waitForFunction(() => (document.querySelector('video') as HTMLVideoElement).currentTime > 3);
      }
      const hiddenAt = Date.now();
      await Promise.all(
        [ours, shaka].map((s) =>
          s.page.evaluate(() => (window as never as { setHidden(h: boolean): void }).setHidden(true)),
        ),
      );
      // Sample our page's buffer while hidden: after 10 s, a segment is fetched only when the buffer is small.
      const samples: { at: number; ahead: number }[] = [];
      while (Date.now() - hiddenAt < 60_000) {
        samples.push({ at: Date.now(), ahead: (await playState(ours.page)).ahead });
        await sleep(500);
      }
      const during = (f: Fetch[]) => f.filter((x) => x.at >= hiddenAt && x.at < hiddenAt + 60_000);
      const bytes = (f: Fetch[]) => during(f).reduce((n, x) => n + x.bytes, 0);
      const oursBytes = bytes(ours.fetched);
      const shakaBytes = bytes(shaka.fetched);
      assert.ok(shakaBytes > 1e6, `Shaka's default fetched ${shakaBytes} B while hidden`);
      assert.ok(oursBytes <= 0.25 * shakaBytes, `ours ${oursBytes} B vs Shaka's default ${shakaBytes} B`);
      for (const f of during(ours.fetched).filter((x) => x.at > hiddenAt + 10_000)) {
        const s = samples.filter((x) => x.at <= f.at).at(-1);
        assert.ok(s && s.ahead <= 6 + 2.5, `fetched ${f.rendition} with ${s?.ahead.toFixed(1)} s buffered`);
        // Nobody sees the picture: the lowest video rung.
        if (f.rendition.startsWith('v')) assert.equal(height.get(f.rendition), 234);
      }
      // Still playing while hidden (audio goes on), then visible: plays on, no stall within 5 s.
      const st = await playState(ours.page);
      assert.equal(st.paused, false);
      await ours.page.evaluate(() => (window as never as { setHidden(h: boolean): void }).setHidden(false));
      const t0 = (await playState(ours.page)).time;
      const stalls0 = await ours.page.evaluate(() => (window as unknown as { stalls: number }).stalls);
      await sleep(5000);
      const t1 = (await playState(ours.page)).time;
      const stalls1 = await ours.page.evaluate(() => (window as unknown as { stalls: number }).stalls);
      assert.equal(stalls1 - stalls0, 0, 'stalled after becoming visible');
      assert.ok(t1 - t0 >= 4.5, `played ${t1 - t0} s in 5 s`);
      assert.deepEqual(ours.errors, []);
    } finally {
      await ours.close();
      await shaka.close();
    }
  });

  it('a 640×360 player gets nothing above 360p; grown to 1920×1080 it reaches the top rung within 10 s', async () => {
    const s = await open(`/watch/${main.id}?embed&autoplay=1&muted=1`, { width: 640, height: 420 });
    try {
      await s.page.waitForFunction(() => (document.querySelector('video') as HTMLVideoElement).currentTime > 6);
      const box = await s.page.locator('video').boundingBox();
      assert.ok(box && box.width <= 640 && box.height <= 360, JSON.stringify(box));
      const video = s.fetched.filter((f) => f.rendition.startsWith('v'));
      assert.ok(video.length > 0);
      for (const f of video) assert.ok((height.get(f.rendition) ?? 0) <= 360, `fetched ${height.get(f.rendition)}p`);
      assert.match(
        (await s.page.evaluate(() => document.querySelector('.abr-reason')?.textContent)) ?? '',
        /capped to 360p: player size/,
      );
      const grownAt = Date.now();
      await s.page.setViewportSize({ width: 1920, height: 1080 });
      const top = topRung();
      const deadline = grownAt + 10_000;
      while (Date.now() < deadline && !s.fetched.some((f) => f.at >= grownAt && f.rendition === top.id))
        await sleep(200);
      const reached = s.fetched.find((f) => f.at >= grownAt && f.rendition === top.id);
      assert.ok(reached, `no ${top.height}p segment within 10 s of the resize`);
      assert.deepEqual(s.errors, []);
    } finally {
      await s.close();
    }
  });

  it('a playlist of two assets rolls over with under 100 ms between the last frame of one and the first of the next', async (t) => {
    const s = await open(`/watch/${second.id}?next=${main.id}&autoplay=1&muted=1`, { width: 1280, height: 900 }, (pg) =>
      pg.addInitScript(() => {
        // Every presented frame of every <video>, with the element it came from.
        const w = window as unknown as { frames: { el: number; at: number; media: number }[]; endedAt: number };
        w.frames = [];
        w.endedAt = 0;
        document.addEventListener(
          'ended',
          () => {
            w.endedAt ||= Date.now();
          },
          true,
        );
        const watched = new WeakSet<HTMLVideoElement>();
        let n = 0;
        const watch = (v: HTMLVideoElement) => {
          if (watched.has(v)) return;
          watched.add(v);
          const el = n++;
          const cb = (now: number, meta: { mediaTime: number }) => {
            w.frames.push({ el, at: now, media: meta.mediaTime });
            v.requestVideoFrameCallback(cb);
          };
          v.requestVideoFrameCallback(cb);
        };
        new MutationObserver(() => {
          for (const v of document.querySelectorAll('video')) watch(v);
        }).observe(document, { childList: true, subtree: true });
      }),
    );
    try {
      await s.page.waitForFunction((title) => document.querySelector('h1')?.textContent?.includes(title), main.title, {
        timeout: 40_000,
      });
      await s.page.waitForFunction(() => (document.querySelector('video') as HTMLVideoElement).currentTime > 2);
      const frames = await s.page.evaluate(
        () => (window as unknown as { frames: { el: number; at: number; media: number }[] }).frames,
      );
      const first = frames.filter((f) => f.el === 0);
      const lastOfFirst = first.at(-1)!;
      assert.ok(lastOfFirst.media > second.duration! - 0.2, `the first asset played to ${lastOfFirst.media} s`);
      const nextFrames = frames.filter((f) => f.el !== 0 && f.at > lastOfFirst.at);
      assert.ok(nextFrames.length > 10, 'the next asset plays');
      const gap = nextFrames[0]!.at - lastOfFirst.at;
      const around = frames
        .filter((f) => Math.abs(f.at - lastOfFirst.at) < 400)
        .map((f) => `${f.el}@${(f.at - lastOfFirst.at).toFixed(0)}:${f.media.toFixed(2)}`);
      t.diagnostic(`gap between the assets: ${gap.toFixed(1)} ms`);
      assert.ok(gap < 100, `gap of ${gap.toFixed(1)} ms between the assets: ${around.join(' ')}`);
      // The next one was loaded before the first ended: its first segment fetched a while before.
      const endedAt = await s.page.evaluate(() => (window as unknown as { endedAt: number }).endedAt);
      const firstNext = s.fetched.find((f) => f.asset === main.id);
      assert.ok(endedAt > 0 && firstNext, 'the first asset ended and the next fetched segments');
      assert.ok(firstNext.at < endedAt - 1000, `preloaded ${endedAt - firstNext.at} ms before the end`);
      assert.deepEqual(s.errors, []);
      // The page is the next asset's now: its player, its title, its quality menu.
      assert.match((await s.page.locator('h1').textContent()) ?? '', new RegExp(main.title));
    } finally {
      await s.close();
    }
  });
});
