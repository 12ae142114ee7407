// The web app in a real browser: Debian's chromium driven by playwright-core (no browser download). Upload a
// generated clip through the page's file input, watch the upload and then the encode progress, follow the Watch
// link, play past 3 s in Shaka Player, pick every rendition from the quality menu, delete from the library.
// Screenshots for the README are taken on the way (docs/screenshots). Then, on a platform of their own: captions
// and audio languages from an MKV with two of each, and an audio-only MP3 with cover art.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { launchChromium } from '../helpers/browser.ts';
import { importSettled, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';

const SHOTS = new URL('../../docs/screenshots/', import.meta.url).pathname;

describe('web app in chromium', () => {
  let p: TestPlatform;
  let browser: Browser;
  let context: BrowserContext;
  let clip: string;
  const consoleErrors: string[] = [];
  let assetId = '';

  const open = async (path: string, viewport = { width: 1280, height: 900 }): Promise<Page> => {
    const page = await context.newPage();
    await page.setViewportSize(viewport);
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${path}: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`${path}: ${e.message}`));
    await page.goto(p.url + path);
    return page;
  };

  before(async () => {
    p = await startTestPlatform({ encode: { preset: 'ultrafast' } });
    const generated = await h264Clip({ seconds: 10, width: 960, height: 540 });
    // A file name as a person's would be: it becomes the title shown on every page (and in the screenshots).
    clip = join(p.dataDir, 'Test pattern at 540p.mp4');
    copyFileSync(generated, clip);
    browser = await launchChromium();
    context = await browser.newContext();
    mkdirSync(SHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await p?.stop();
  });

  it('uploads through the file input, shows upload then encoding progress, then the Watch link', async () => {
    const page = await open('/');
    // Slow the upload down (Chrome's network emulation) so it is visibly in progress for the screenshot.
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: 1.5 * 1024 * 1024,
    });
    await page.setInputFiles('#file-input', clip);
    const bar = page.locator('.upload progress').first();
    await page.waitForFunction(() => {
      const v = (document.querySelector('.upload progress') as HTMLProgressElement | null)?.value ?? 0;
      return v > 20 && v < 90;
    });
    assert.match((await page.locator('.upload .figures').first().textContent()) ?? '', /MB \/ .*MB.*\/s/);
    await page.screenshot({ path: join(SHOTS, 'upload.png') });
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });
    await page.waitForFunction(
      () => (document.querySelector('.upload progress') as HTMLProgressElement | null)?.value === 100,
    );
    assert.equal(await bar.getAttribute('aria-label'), 'Upload of Test pattern at 540p.mp4');
    // Encoding progress from the SSE stream, then the Watch link once playable.
    await page.locator('.upload progress.encode').waitFor();
    await page.waitForFunction(() =>
      /Encoding|Queued|Ready/.test(document.querySelector('.upload .state')?.textContent ?? ''),
    );
    const watch = page.locator('.upload a.watch:not([hidden])');
    await watch.waitFor({ timeout: 120_000 });
    const href = (await watch.getAttribute('href')) ?? '';
    assetId = /\/watch\/([a-z0-9]{16})$/.exec(href)?.[1] ?? '';
    assert.ok(assetId, href);
    await page.waitForFunction(() => document.querySelector('.upload')?.getAttribute('data-status') === 'ready', null, {
      timeout: 180_000,
    });
    await page.close();
  });

  it('plays on the watch page past 3 s, lists every rendition and switches to the one chosen', async () => {
    const asset = await p.get<AssetJson>(`/api/assets/${assetId}`);
    const heights = asset.renditions.filter((r) => r.type === 'video').map((r) => r.height);
    assert.ok(heights.length >= 2, `a ladder to choose from: ${heights}`);
    const page = await open(`/watch/${assetId}`);
    await page.locator('button.play').click();
    await page.waitForFunction(() => (document.querySelector('video')?.currentTime ?? 0) > 3, null, {
      timeout: 60_000,
    });

    const options = await page
      .locator('select.quality option')
      .evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    assert.deepEqual(options, ['auto', ...heights.map(String)]);
    for (const h of [heights.at(-1)!, heights[0]!]) {
      await page.selectOption('select.quality', String(h));
      await page.waitForFunction(
        (want) => {
          const player = (
            window as unknown as { smoothcastPlayer: { getVariantTracks(): { active: boolean; height: number }[] } }
          ).smoothcastPlayer;
          const active = player.getVariantTracks().find((t) => t.active);
          return (
            active?.height === want && document.querySelector('.current')?.getAttribute('data-height') === String(want)
          );
        },
        h,
        { timeout: 30_000 },
      );
    }
    assert.match((await page.locator('.stats').textContent()) ?? '', /Playing \d+p · .*Bandwidth/);
    // Thumbnails: hovering over the seek bar shows the tile for that time, cut from its sprite sheet.
    const seekBox = (await page.locator('input.seek').boundingBox())!;
    await page.mouse.move(seekBox.x + seekBox.width * 0.6, seekBox.y + seekBox.height / 2);
    const preview = page.locator('.preview');
    await preview.waitFor({ state: 'visible' });
    assert.match((await preview.getAttribute('style')) ?? '', /background-image: url\(".*thumbs-001\.jpg"\)/);
    await page.screenshot({ path: join(SHOTS, 'watch-thumbnails.png') });
    await page.mouse.move(seekBox.x, seekBox.y - 200);
    // Keyboard: m mutes, space pauses.
    await page.locator('video').focus();
    await page.keyboard.press('m');
    assert.equal(await page.locator('video').evaluate((v) => (v as HTMLVideoElement).muted), true);
    await page.keyboard.press(' ');
    assert.equal(await page.locator('video').evaluate((v) => (v as HTMLVideoElement).paused), true);
    // Labels on every control (screen readers), and the share section.
    for (const sel of ['button.play', 'input.seek', 'button.mute', 'select.quality', 'button.fullscreen']) {
      assert.ok(await page.locator(sel).getAttribute('aria-label'), `${sel} has a label`);
    }
    assert.match(
      await page.locator('input[aria-label="Embed code"]').inputValue(),
      /<iframe src=".*\/watch\/.*\?embed"/,
    );
    await page.screenshot({ path: join(SHOTS, 'watch.png') });
    await page.close();
  });

  it('plays every delivery of the same files in Shaka: HLS, DASH, byte-range HLS, SegmentBase DASH', async () => {
    for (const format of ['hls', 'dash', 'hls-byterange', 'dash-segmentbase']) {
      const page = await open(`/watch/${assetId}?format=${format}`);
      await page.locator('button.play').click();
      await page.waitForFunction(() => (document.querySelector('video')?.currentTime ?? 0) > 2, null, {
        timeout: 60_000,
      });
      assert.equal(await page.locator('.message').textContent(), '', format);
      await page.close();
    }
  });

  it('plays a progressive download in a plain <video src>', async () => {
    const asset = await p.get<AssetJson>(`/api/assets/${assetId}`);
    assert.ok(asset.playback.downloads.length > 0);
    const page = await open('/library');
    for (const d of asset.playback.downloads) {
      await page.evaluate((src) => {
        const v = document.createElement('video');
        v.id = 'progressive';
        v.muted = true;
        v.src = src;
        document.body.append(v);
        void v.play();
      }, d.url);
      await page.waitForFunction(
        () => (document.querySelector('#progressive') as HTMLVideoElement).currentTime > 2,
        null,
        {
          timeout: 30_000,
        },
      );
      const t = await page.evaluate(() => {
        const v = document.querySelector('#progressive') as HTMLVideoElement;
        v.remove();
        return { h: v.videoHeight };
      });
      assert.equal(t.h, d.height);
    }
    await page.close();
  });

  it('shows the library at phone width and deletes an asset with its files after confirmation', async () => {
    const page = await open('/library', { width: 390, height: 844 });
    const card = page.locator(`li.asset[data-id="${assetId}"]`);
    await card.waitFor();
    assert.match((await card.textContent()) ?? '', /Test pattern at 540p.*0:10.*Ready/s);
    assert.ok(await card.locator('img').getAttribute('src'));
    assert.equal(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
      true,
      'no horizontal scrolling at phone width',
    );
    page.once('dialog', (d) => void d.accept());
    await card.locator('button.delete').click();
    await card.waitFor({ state: 'detached' });
    assert.equal((await fetch(`${p.url}/api/assets/${assetId}`)).status, 404);
    assert.equal(existsSync(join(p.dataDir, 'media', 'assets', assetId)), false);
    await page.close();
  });

  it('pauses, resumes, resumes after a reload, and cancels (deleting the bytes on the server)', async () => {
    const page = await open('/');
    const cdp = await context.newCDPSession(page);
    const throttle = (bps: number) =>
      cdp.send('Network.emulateNetworkConditions', {
        offline: false,
        latency: 0,
        downloadThroughput: -1,
        uploadThroughput: bps,
      });
    const value = () =>
      page.evaluate(() => (document.querySelector('.upload progress') as HTMLProgressElement | null)?.value ?? 0);
    await throttle(1024 * 1024);
    await page.setInputFiles('#file-input', clip);
    await page.waitForFunction(
      () => ((document.querySelector('.upload progress') as HTMLProgressElement | null)?.value ?? 0) > 15,
    );
    await page.locator('.upload button.pause').click();
    await page.waitForFunction(() => /Paused at/.test(document.querySelector('.upload .state')?.textContent ?? ''));
    const paused = await value();
    await page.waitForTimeout(600);
    assert.equal(await value(), paused, 'no progress while paused');
    await page.locator('.upload button.pause').click(); // now "Resume"
    await page.waitForFunction((v) => {
      const now = (document.querySelector('.upload progress') as HTMLProgressElement | null)?.value ?? 0;
      return now > v + 5;
    }, paused);

    // Reload mid-upload: the page lists it as unfinished; choosing the file again resumes past where it was.
    const before = await value();
    await page.reload();
    await page.locator('section.resumable:not([hidden])').waitFor();
    // Still throttled, so the resumed upload is visibly in progress when its first figure is read.
    await page.setInputFiles('#file-input', clip);
    await page.waitForFunction(() => /Uploading/.test(document.querySelector('.upload .state')?.textContent ?? ''));
    const first = await value();
    assert.ok(first >= before - 1 && first < 100, `resumed at ${first}% after ${before}%, not from 0`);
    await throttle(-1);
    await page.waitForFunction(
      () => (document.querySelector('.upload progress') as HTMLProgressElement | null)?.value === 100,
    );

    // Cancel another upload midway: its bytes are gone from the server.
    await throttle(512 * 1024);
    const other = join(p.dataDir, 'Another clip.mp4');
    copyFileSync(clip, other);
    await page.setInputFiles('#file-input', other);
    const card = page.locator('li.upload[data-file="Another clip.mp4"]');
    await page.waitForFunction(() => {
      const c = document.querySelector(
        'li.upload[data-file="Another clip.mp4"] progress',
      ) as HTMLProgressElement | null;
      return (c?.value ?? 0) > 10;
    });
    const uploads = join(p.dataDir, 'uploads');
    const partial = readdirSync(uploads).filter((f) => !f.endsWith('.json'));
    assert.ok(partial.length > 0);
    await card.locator('button.cancel').click();
    await card.locator('text=Cancelled').waitFor();
    const left = readdirSync(uploads).filter((f) => f.endsWith('.json'));
    for (const f of left) {
      const info = JSON.parse(readFileSync(join(uploads, f), 'utf8')) as { metadata?: { filename?: string } };
      assert.notEqual(info.metadata?.filename, 'Another clip.mp4', 'the cancelled upload is gone');
    }
    await throttle(-1);
    await page.close();
  });

  it('shows why a non-video upload failed', async () => {
    const page = await open('/');
    const bogus = join(p.dataDir, 'notes.mp4');
    writeFileSync(bogus, 'this is not a video\n'.repeat(1000));
    await page.setInputFiles('#file-input', bogus);
    await page.waitForFunction(
      () => /Failed — MEDIA_UNREADABLE/.test(document.querySelector('.upload .state')?.textContent ?? ''),
      null,
      {
        timeout: 60_000,
      },
    );
    await page.close();
  });

  it('logged no console errors on any page', () => {
    assert.deepEqual(consoleErrors, []);
  });
});

/** What the watch page's player (`window.smoothcastPlayer`) is asked in these tests. */
interface PagePlayer {
  getAudioTracks(): { active: boolean; language: string }[];
  getVariantTracks(): { active: boolean; language: string }[];
  getTextTracks(): { active: boolean; language: string }[];
}

describe('captions, audio languages and audio-only assets in chromium', () => {
  let p: TestPlatform;
  let browser: Browser;
  let context: BrowserContext;
  const consoleErrors: string[] = [];
  const CUE = 'Hello from the captions test';

  const ffmpeg = (args: string[]) =>
    promisify(execFile)('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { timeout: 120_000 });
  const open = async (path: string): Promise<Page> => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 1280, height: 720 });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${path}: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`${path}: ${e.message}`));
    await page.goto(p.url + path);
    return page;
  };
  const mediaTime = (page: Page) =>
    page.evaluate(() => (document.querySelector('.player video, .player audio') as HTMLMediaElement).currentTime);

  before(async () => {
    p = await startTestPlatform({ encode: { preset: 'ultrafast' } });
    browser = await launchChromium();
    context = await browser.newContext();
    mkdirSync(SHOTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await p?.stop();
  });

  it('shows the chosen captions over the video and in fullscreen, remembers them, and switches audio language', async () => {
    const srt = (text: string) => `1\n00:00:01,000 --> 00:00:08,000\n${text}\n\n`;
    writeFileSync(join(p.dataDir, 'en.srt'), srt(CUE));
    writeFileSync(join(p.dataDir, 'fr.srt'), srt('Bonjour des sous-titres'));
    const source = join(p.dataDir, 'Two languages.mkv');
    // Two audio languages (tones of different pitch) and two SubRip tracks, tagged with ISO 639-2 codes.
    await ffmpeg([
      ...['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25:duration=10'],
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=10'],
      ...['-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=48000:duration=10'],
      ...['-i', join(p.dataDir, 'en.srt'), '-i', join(p.dataDir, 'fr.srt')],
      ...['-map', '0:v', '-map', '1:a', '-map', '2:a', '-map', '3:s', '-map', '4:s'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-c:s', 'srt'],
      ...['-metadata:s:a:0', 'language=eng', '-metadata:s:a:1', 'language=fre'],
      ...['-metadata:s:s:0', 'language=eng', '-metadata:s:s:1', 'language=fre'],
      source,
    ]);
    const asset = await importSettled(p, source);
    assert.equal(asset.status, 'ready', JSON.stringify(asset.error));
    assert.deepEqual(
      asset.captions.map((c) => c.language),
      ['en', 'fr'],
      `API captions: ${JSON.stringify(asset.captions)}`,
    );
    const audioLanguages = asset.renditions.filter((r) => r.type === 'audio').map((r) => r.language);
    assert.deepEqual(
      [...new Set(audioLanguages)],
      ['en', 'fr'],
      `API audio renditions: ${JSON.stringify(audioLanguages)}`,
    );
    // The manifests themselves carry the tracks (the page falls back to the WebVTT files only when they do not).
    const mpd = await (await fetch(p.url + asset.playback.dash)).text();
    assert.equal(mpd.match(/mimeType="text\/vtt"/g)?.length, 2, `text AdaptationSets in the MPD:\n${mpd}`);
    const m3u8 = await (await fetch(p.url + asset.playback.hls)).text();
    assert.equal(m3u8.match(/#EXT-X-MEDIA:TYPE=SUBTITLES/g)?.length, 2, `subtitles in the HLS playlist:\n${m3u8}`);
    assert.equal(m3u8.match(/#EXT-X-MEDIA:TYPE=AUDIO/g)?.length, 2, `audio renditions in the HLS playlist:\n${m3u8}`);

    const page = await open(`/watch/${asset.id}`);
    const menu = page.locator('select.captions');
    await menu.waitFor({ state: 'visible' });
    assert.deepEqual(await menu.locator('option').allTextContents(), ['Off', 'English', 'French']);
    assert.equal(await menu.inputValue(), 'off', 'captions start off');
    await page.selectOption('select.captions', { label: 'English' });
    await page.locator('button.play').click();
    await page.waitForFunction(() => (document.querySelector('video')?.currentTime ?? 0) > 0.5, null, {
      timeout: 60_000,
    });
    await page.evaluate(() => {
      (document.querySelector('video') as HTMLVideoElement).currentTime = 3;
    });
    const cue = page.locator('.player').getByText(CUE);
    await cue.waitFor({ state: 'visible', timeout: 30_000 });
    await page.evaluate(() => (document.querySelector('video') as HTMLVideoElement).pause());
    // Drawn over the picture: inside the video's box, above the control bar (polled: entering fullscreen, the
    // boxes are briefly re-laid out).
    const inside = () =>
      page.waitForFunction(
        (text) => {
          const cueEl = [...document.querySelectorAll('.player span')].find((e) => e.textContent === text);
          const video = document.querySelector('.player video');
          const bar = document.querySelector('.player .controls');
          if (!cueEl || !video || !bar) return false;
          const c = cueEl.getBoundingClientRect();
          const v = video.getBoundingClientRect();
          const b = bar.getBoundingClientRect();
          return c.width > 0 && c.top >= v.top && c.bottom <= v.bottom && c.bottom <= b.top && c.left >= v.left;
        },
        CUE,
        { timeout: 10_000 },
      );
    await inside();
    assert.ok(await cue.isVisible());
    // The whole player in the picture, the title above it.
    await page.locator('.player').evaluate((f) => f.scrollIntoView({ block: 'end' }));
    await page.screenshot({ path: join(SHOTS, 'captions.png') });

    await page.click('.fullscreen');
    await page.waitForFunction(() => document.fullscreenElement?.classList.contains('player'));
    await cue.waitFor({ state: 'visible' });
    await inside();
    await page.evaluate(() => document.exitFullscreen());
    await page.waitForFunction(() => !document.fullscreenElement);

    // The c key turns them off and back on (the last chosen track).
    await page.locator('video').focus();
    await page.keyboard.press('c');
    await cue.waitFor({ state: 'hidden' });
    assert.equal(await menu.inputValue(), 'off');
    await page.keyboard.press('c');
    await cue.waitFor({ state: 'visible' });

    // Remembered in this browser: English again after a reload, without choosing.
    await page.reload();
    await page.waitForFunction(() => {
      const s = document.querySelector('select.captions') as HTMLSelectElement | null;
      return s?.checkVisibility() && s.selectedOptions[0]?.textContent === 'English';
    });
    const stored = JSON.parse((await page.evaluate(() => localStorage.getItem('smoothcast.captions'))) ?? '{}');
    assert.equal(stored.language, 'en', JSON.stringify(stored));

    // Audio: one entry per language; French replaces English without a reload, and playback carries on.
    const audio = page.locator('select.audio-language');
    await audio.waitFor({ state: 'visible' });
    assert.deepEqual(await audio.locator('option').allTextContents(), ['English', 'French']);
    await page.locator('button.play').click();
    await page.waitForFunction(() => (document.querySelector('video')?.currentTime ?? 0) > 0.5, null, {
      timeout: 60_000,
    });
    await page.selectOption('select.audio-language', { label: 'French' });
    await page.waitForFunction(
      () => {
        const player = (window as unknown as { smoothcastPlayer: PagePlayer }).smoothcastPlayer;
        return (
          player.getAudioTracks().find((t) => t.active)?.language === 'fr' &&
          player.getVariantTracks().find((t) => t.active)?.language === 'fr'
        );
      },
      null,
      { timeout: 30_000 },
    );
    const at = await mediaTime(page);
    await page.waitForFunction((t) => (document.querySelector('video')?.currentTime ?? 0) > t + 1, at, {
      timeout: 30_000,
    });
    assert.equal(await page.locator('.message').textContent(), '');
    await page.reload();
    await page.waitForFunction(() => {
      const s = document.querySelector('select.audio-language') as HTMLSelectElement | null;
      return s?.checkVisibility() && s.selectedOptions[0]?.textContent === 'French';
    });
    await page.close();

    // The HLS delivery (segmented WebVTT, RFC 8216 §3.5): the remembered English captions show there too.
    const hls = await open(`/watch/${asset.id}?format=hls`);
    await hls.locator('button.play').click();
    await hls.waitForFunction(() => (document.querySelector('video')?.currentTime ?? 0) > 0.5, null, {
      timeout: 60_000,
    });
    await hls.evaluate(() => {
      (document.querySelector('video') as HTMLVideoElement).currentTime = 3;
    });
    await hls.locator('.player').getByText(CUE).waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(
      await hls.locator('select.captions').inputValue(),
      await hls.locator('select.captions option', { hasText: 'English' }).getAttribute('value'),
    );
    await hls.close();
  });

  it('plays an audio-only MP3 as an audio player under its cover art', async () => {
    const source = join(p.dataDir, 'Orange song.mp3');
    await ffmpeg([
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:duration=6', '-f', 'lavfi', '-i', 'color=c=orange:s=300x300:d=1'],
      ...['-map', '0:a', '-map', '1:v', '-c:a', 'libmp3lame', '-c:v', 'mjpeg', '-frames:v', '1'],
      ...['-disposition:v', 'attached_pic', '-id3v2_version', '3'],
      source,
    ]);
    const asset = await importSettled(p, source);
    assert.equal(asset.status, 'ready', JSON.stringify(asset.error));
    assert.equal(asset.mediaType, 'audio');
    assert.deepEqual(
      asset.renditions.map((r) => r.type),
      asset.renditions.map(() => 'audio'),
    );
    const page = await open(`/watch/${asset.id}`);
    const cover = page.locator('.player.audio img.cover');
    await cover.waitFor({ state: 'visible' });
    await page.waitForFunction(() => {
      const img = document.querySelector('.player img.cover') as HTMLImageElement | null;
      return img?.complete && img.naturalWidth > 0;
    });
    assert.equal(await page.locator('.player video').count(), 0);
    assert.equal(await page.locator('select.quality').count(), 0, 'no quality menu');
    assert.equal(await page.locator('button.fullscreen').count(), 0, 'no fullscreen button');
    assert.equal(await page.locator('.preview').count(), 0, 'no thumbnail preview');
    await page.locator('button.play').click();
    await page.waitForFunction(
      () => (document.querySelector('.player audio') as HTMLAudioElement).currentTime > 2,
      null,
      {
        timeout: 60_000,
      },
    );
    assert.equal(await page.locator('.message').textContent(), '');
    assert.match((await page.locator('.downloads').first().textContent()) ?? '', /Audio \(M4A\)/);
    await page.screenshot({ path: join(SHOTS, 'audio.png') });
    // The song's own cover art (orange), not the waveform drawn for audio without one.
    const centre = await page.evaluate(() => {
      const img = document.querySelector('.player img.cover') as HTMLImageElement;
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const g = canvas.getContext('2d')!;
      g.drawImage(img, 0, 0);
      return [...g.getImageData(img.naturalWidth >> 1, img.naturalHeight >> 1, 1, 1).data.slice(0, 3)];
    });
    const [r = 0, g = 0, b = 0] = centre;
    assert.ok(r > 200 && g > 120 && g < 200 && b < 80, `the cover art is orange at its centre: rgb(${centre})`);
    await page.close();
  });

  it('logged no console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });
});
