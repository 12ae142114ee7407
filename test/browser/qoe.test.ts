// Viewing quality from the real player: the watch page's Shaka Player sends CMCD (CTA-5004) as request headers; after
// ~8 s of playback in Debian's chromium the API counts one session with a startup figure and the time-weighted
// bitrate of the video it fetched — one of the bitrates the manifest offers it, or a mix between them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page, Request } from 'playwright-core';
import type { QoeSummary as Qoe } from '../../src/core/db/qoe.ts';
import { parseCmcdRequest } from '../../src/roles/origin/cmcd.ts';
import { importSettled, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';
import { fetchText } from '../helpers/verify.ts';
import { openBrowser, openPage, signIn } from './pages.ts';

describe('viewing quality from the watch page in chromium', () => {
  let p: TestPlatform;
  let browser: Browser;
  let context: BrowserContext;
  const consoleErrors: string[] = [];

  before(async () => {
    p = await startTestPlatform({ encode: { preset: 'ultrafast' }, origin: { qoeFlushMs: 200 } });
    ({ browser, context } = await openBrowser());
    await signIn(context, p);
  });

  after(async () => {
    await browser?.close();
    await p?.stop();
  });

  it('one played session: a startup figure and an average bitrate among the offered video bitrates', async (t) => {
    const asset = await importSettled(p, await h264Clip({ seconds: 16, width: 960, height: 540 }), 240_000);
    assert.equal(asset.status, 'ready', JSON.stringify(asset.error));
    // The video bitrates the player is offered (the MPD's @bandwidth, which Shaka reports as `br`, in kbps).
    const mpd = await fetchText(new URL(asset.playback.dash!, p.url).href);
    const offered = [...mpd.matchAll(/<Representation\b[^>]*\bid="(v\d+)"[^>]*\bbandwidth="(\d+)"/g)].map(
      (m) => Math.round(Number(m[2]) / 1000) * 1000,
    );
    assert.ok(offered.length >= 2, mpd);

    // What Shaka sent on the requests it completed, seen from the page (the expected figures from its own words).
    const sent: { url: string; headers: Record<string, string> }[] = [];
    const aborted: string[] = [];
    const page: Page = await openPage(
      context,
      p.url,
      `/watch/${asset.id}`,
      { width: 1280, height: 720 },
      consoleErrors,
    );
    const media = (r: { url(): string; method(): string }) =>
      new URL(r.url()).pathname.startsWith('/v/') && r.method() === 'GET';
    // The media requests in flight (a set, not a count: one started before these listeners may still end here).
    const inFlight = new Set<Request>();
    let lastRequest = Date.now();
    page.on('request', (r) => {
      if (!media(r)) return;
      inFlight.add(r);
      lastRequest = Date.now();
    });
    page.on('requestfinished', (r) => {
      inFlight.delete(r);
      if (media(r)) sent.push({ url: r.url(), headers: r.headers() });
    });
    page.on('requestfailed', (r) => {
      inFlight.delete(r);
      if (media(r)) aborted.push(`${new URL(r.url()).pathname}: ${r.failure()?.errorText}`);
    });
    await page.locator('button.play').click();
    await page.waitForFunction(() => (document.querySelector('video')?.currentTime ?? 0) > 8, null, {
      timeout: 90_000,
    });
    // Paused, the policy stops fetching beyond a small buffer; the page closes once no media request is in flight,
    // so every download the origin answered is one the page saw finish (or fail) — a request cut by the close would
    // be counted by the origin and by neither list here.
    await page.evaluate(() => document.querySelector('video')?.pause());
    await until(
      'no media request in flight (nor started for 1 s)',
      async () => (inFlight.size === 0 && Date.now() - lastRequest > 1000 ? true : undefined),
      20_000,
    );
    await page.close();

    const cmcd = sent.map((s) => parseCmcdRequest(s.headers, s.url)).filter((c) => c !== null);
    assert.ok(cmcd.length >= 5, `Shaka sent CMCD on its requests: ${JSON.stringify(sent.slice(0, 3))}`);
    assert.equal(new Set(cmcd.map((c) => c.sid)).size, 1, 'one session id');
    assert.ok(
      cmcd.every((c) => c.cid === asset.id),
      'contentId: the asset id',
    );
    assert.ok(cmcd.some((c) => c.su) && cmcd.some((c) => c.ot !== 'm' && !c.su), 'a startup, then steady requests');
    const videoObjects = cmcd.filter((c) => c.ot === 'v' && c.br !== undefined && c.d !== undefined);
    const videoMs = videoObjects.reduce((n, c) => n + c.d!, 0);
    const expected = Math.round((videoObjects.reduce((n, c) => n + c.br! * c.d!, 0) / videoMs) * 1000);

    // The origin counts the downloads that completed, as the page does; the next flush (200 ms) brings the last.
    // A download the player aborted after its last byte left the server (an ABR switch, the page closing) is
    // counted there and not here: with aborts, wait until the figures settle and only bound them.
    let last = '';
    const q = await until(
      'the QoE flush',
      async () => {
        const r = await p.get<Qoe>(`/api/assets/${asset.id}/qoe`);
        if (r.sessions === 1 && r.watchedSeconds === videoMs / 1000) return r;
        const now = JSON.stringify(r);
        if (aborted.length > 0 && r.sessions === 1 && now === last) return r;
        last = now;
        return undefined;
      },
      15_000,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}: last QoE ${last}; the page saw ${videoObjects.length} video downloads (${videoMs / 1000} s) ` +
          `of ${sent.length} media requests finished, ${aborted.length} aborted ${aborted.slice(0, 3)}`,
      );
    });
    t.diagnostic(`offered ${offered} b/s; QoE ${JSON.stringify(q)}; aborted ${aborted.length} ${aborted.slice(0, 3)}`);
    assert.equal(q.stalledSessions, 0);
    assert.equal(q.stallRatio, 0);
    assert.ok(q.medianStartupMs !== null && q.medianStartupMs > 0 && q.medianStartupMs < 30_000, JSON.stringify(q));
    if (q.watchedSeconds === videoMs / 1000) assert.equal(q.averageBitrate, expected);
    else assert.ok(aborted.length > 0 && q.watchedSeconds > videoMs / 1000, JSON.stringify({ q, videoMs, aborted }));
    const bitrates = new Set(videoObjects.map((c) => c.br! * 1000));
    if (bitrates.size === 1) assert.ok(offered.includes(q.averageBitrate!), `${q.averageBitrate} in ${offered}`);
    assert.ok(
      q.averageBitrate! >= Math.min(...offered) && q.averageBitrate! <= Math.max(...offered),
      `${q.averageBitrate} within ${offered}`,
    );
    assert.deepEqual(consoleErrors, []);
  });
});
