// The web app's text and audio tracks in a real browser: Debian's chromium driven by playwright-core (no browser
// download). From an MKV with two audio languages and two subtitle tracks: the captions menu, the chosen cue drawn
// over the video and in fullscreen, the c key, the choice remembered after a reload, French audio replacing English
// while playing, and the captions on the HLS delivery too. Then an audio-only MP3 plays as an audio player under its
// cover art. Screenshots for the README are taken on the way (docs/screenshots).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { importSettled, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { openBrowser, openPage, SHOTS, signIn } from './pages.ts';

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
  const open = (path: string): Promise<Page> =>
    openPage(context, p.url, path, { width: 1280, height: 720 }, consoleErrors);
  const mediaTime = (page: Page) =>
    page.evaluate(() => (document.querySelector('.player video, .player audio') as HTMLMediaElement).currentTime);

  before(async () => {
    p = await startTestPlatform({ encode: { preset: 'ultrafast' } });
    ({ browser, context } = await openBrowser());
    // The app's pages are for signed-in users: the admin's login session.
    await signIn(context, p);
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
