// The web app in a real browser: Debian's chromium driven by playwright-core (no browser download). Upload a
// generated clip through the page's file input, watch the upload and then the encode progress, follow the Watch
// link, play past 3 s in Shaka Player, pick every rendition from the quality menu, delete from the library.
// Screenshots for the README are taken on the way (docs/screenshots). Captions, audio languages and audio-only
// assets are in web-tracks.test.ts.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';
import { openBrowser, openPage, SHOTS, signIn } from './pages.ts';

describe('web app in chromium', () => {
  let p: TestPlatform;
  let browser: Browser;
  let context: BrowserContext;
  let clip: string;
  const consoleErrors: string[] = [];
  let assetId = '';

  const open = (path: string, viewport = { width: 1280, height: 900 }): Promise<Page> =>
    openPage(context, p.url, path, viewport, consoleErrors);

  before(async () => {
    p = await startTestPlatform({ encode: { preset: 'ultrafast' } });
    const generated = await h264Clip({ seconds: 10, width: 960, height: 540 });
    // A file name as a person's would be: it becomes the title shown on every page (and in the screenshots).
    clip = join(p.dataDir, 'Test pattern at 540p.mp4');
    copyFileSync(generated, clip);
    ({ browser, context } = await openBrowser());
    // The app's pages are for signed-in users: the admin's login session.
    await signIn(context, p);
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
    assert.equal((await p.api(`/api/assets/${assetId}`)).status, 404);
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
