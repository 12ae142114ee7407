// Signed and encrypted playback in real players, in headless Debian chromium, from a page on another origin than
// the media (security-lab.js). One asset is imported once; its playback policy and encryption are switched between
// groups by PATCH /api/assets/:id, and each group waits for the manifests to say so before its cells run.
// Each cell: the player starts from the manifest URL (the token in its query, nothing else about the token told to
// the player), plays ≥ 3 s with no player error, and the video element has decoded frames. Encrypted cells also
// show that the bytes served are encrypted (the inits' sample entries are encv/enca with the scheme in schm; an
// AES-128 segment is not ISO BMFF) and that playing needed the right key: the same player handed a wrong key for the
// KID fails to decode, and one whose licence (or key) request lacks the token is refused. Every cell runs in a
// fresh browser context: an encrypted asset's segment URLs are the same whatever the scheme (and immutable), so a
// shared HTTP cache would hand one group's bytes to the next.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page, Route } from 'playwright-core';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { launchChromium } from '../helpers/browser.ts';
import { importSettled, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';
import { type Lab, startLab } from './lab-server.ts';

interface TokenJson {
  token: string;
  expiresAt: string;
  playback: AssetJson['playback'];
}
interface LabState {
  state: string;
  errors: string[];
  version: string;
  log: string[];
}
interface Quality {
  currentTime: number;
  totalVideoFrames: number;
  droppedVideoFrames: number;
  videoWidth: number;
  readyState: number;
  mediaKeys: boolean;
}
interface CellOptions {
  /** A ClearKey licence URL put into the player's DRM configuration. */
  license?: string;
  /** hls.js: EME on (emeEnabled, drmSystems org.w3.clearkey). */
  eme?: boolean;
  /** Playwright routes set on the page before it loads (the wrong-key controls). */
  route?: (page: Page) => Promise<unknown>;
}
interface CellResult {
  lab: LabState;
  quality: Quality;
  /** Each manifest, licence and key request the page made, in order: `METHOD file[?token] → status`. */
  requests: string[];
  consoleErrors: string[];
}

const PLAY_SECONDS = 3;
const flip = (b64url: string) => {
  const b = Buffer.from(b64url, 'base64url');
  for (let i = 0; i < b.length; i++) b[i]! ^= 0xff;
  return b.toString('base64url');
};
const stripToken = (u: string) => {
  const x = new URL(u);
  x.searchParams.delete('token');
  return x.href;
};
/** The four-character box types found at the top level of an ISO BMFF buffer (stops at the first nonsense). */
function topBoxes(b: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  while (at + 8 <= b.length) {
    const size = b.readUInt32BE(at);
    const type = b.toString('latin1', at + 4, at + 8);
    if (!/^[a-z0-9 ]{4}$/i.test(type) || size < 8 || at + size > b.length) break;
    out.push(type);
    at += size;
  }
  return out;
}

describe('signed and encrypted playback in real players (chromium)', { concurrency: false }, () => {
  let p: TestPlatform;
  let asset: AssetJson;
  let browser: Browser;
  let lab: Lab;
  const abs = (u: string) => new URL(u, p.url).href;
  const started = Date.now();

  before(async () => {
    p = await startTestPlatform({ encode: { preset: 'ultrafast' } });
    asset = await importSettled(p, await h264Clip({ seconds: 8, width: 640, height: 360 }));
    assert.equal(asset.status, 'ready', JSON.stringify(asset.error));
    lab = await startLab('security', 'security-lab.js');
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await lab?.close();
    await p?.stop();
    console.log(`security-playback: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  async function token(): Promise<TokenJson> {
    const r = await p.api(`/api/assets/${asset.id}/playback-tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(r.status, 201, await r.clone().text());
    return (await r.json()) as TokenJson;
  }

  /** The first media playlist of the multivariant playlist at `hls`, as served (absolute URL and text). */
  async function mediaPlaylist(hls: string): Promise<{ url: string; text: string }> {
    const master = await (await fetch(hls)).text();
    const uri = master.split('\n').find((l) => l.length > 0 && !l.startsWith('#'));
    assert.ok(uri, master);
    const url = new URL(uri, hls).href;
    const r = await fetch(url);
    assert.equal(r.status, 200, url);
    return { url, text: await r.text() };
  }

  /**
   * PATCHes the asset to signed playback with `encryption`, then waits until what is served says so (the origin
   * may answer from what it read of the asset's access up to 2 s before); returns a fresh token and its URLs.
   */
  async function switchTo(encryption: 'none' | 'aes-128' | 'cenc' | 'cbcs'): Promise<TokenJson> {
    const r = await p.api(`/api/assets/${asset.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ playbackPolicy: 'signed', encryption, maxViewers: null }),
    });
    assert.equal(r.status, 200, await r.clone().text());
    const t = await token();
    await until(
      `the manifests to show encryption ${encryption}`,
      async () => {
        const tokenless = await fetch(stripToken(abs(t.playback.hls!)));
        if (tokenless.status !== 403) return undefined;
        const mpd = await (await fetch(abs(t.playback.dash!))).text();
        const { text } = await mediaPlaylist(abs(t.playback.hls!));
        const cp = /schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="(\w+)"/.exec(mpd)?.[1] ?? 'none';
        const method = /#EXT-X-KEY:METHOD=([\w-]+)/.exec(text)?.[1] ?? 'NONE';
        const want = {
          none: ['none', 'NONE'],
          'aes-128': ['none', 'AES-128'],
          cenc: ['cenc', 'SAMPLE-AES-CTR'],
          cbcs: ['cbcs', 'SAMPLE-AES'],
        }[encryption];
        return cp === want[0] && method === want[1] ? true : undefined;
      },
      10_000,
    );
    return t;
  }

  /** Opens the lab page for `player` on `url` (a fresh browser context: no HTTP cache shared between cells). */
  async function openCell(player: string, url: string, o: CellOptions = {}) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('response', (r) => {
      const u = new URL(r.url());
      if (/\/(clearkey|key\.bin|master\.m3u8|manifest\.mpd)$/.test(u.pathname) && r.request().method() !== 'OPTIONS') {
        requests.push(
          `${r.request().method()} ${u.pathname.split('/').pop()}${u.searchParams.has('token') ? '?token' : ''} → ${r.status()}`,
        );
      }
    });
    await o.route?.(page);
    const params = new URLSearchParams({ player, url });
    if (o.license) params.set('license', o.license);
    if (o.eme) params.set('eme', '1');
    if (process.env.SC_LAB_DEBUG) params.set('debug', '1');
    await page.goto(`${lab.url}/security.html?${params}`);
    const read = async (): Promise<CellResult> => ({
      lab: await page.evaluate(() => (window as unknown as { lab: LabState }).lab),
      quality: await page.evaluate(() => (window as unknown as { labQuality(): Quality }).labQuality()),
      requests,
      consoleErrors,
    });
    return { page, context, read };
  }

  const describeCell = (r: CellResult) =>
    JSON.stringify({ errors: r.lab.errors, quality: r.quality, requests: r.requests, log: r.lab.log.slice(-12) });

  /** SC_LAB_VERBOSE=1: each cell's outcome on stdout (player errors, frames, licence requests, what it logged). */
  const verbose = (what: string, player: string, url: string, r: CellResult) => {
    if (process.env.SC_LAB_VERBOSE) {
      console.log(`${what}? ${player} ${r.lab.version} ${new URL(url).pathname}: ${describeCell(r)}`);
    }
  };

  /** The cell plays: ≥ PLAY_SECONDS of media, no player error, decoded frames. */
  async function plays(player: string, url: string, o: CellOptions = {}): Promise<CellResult> {
    const { page, context, read } = await openCell(player, url, o);
    try {
      await page
        .waitForFunction(
          (t) => {
            const w = window as unknown as { lab: LabState };
            return document.querySelector('video')!.currentTime >= t || w.lab.errors.length > 0;
          },
          PLAY_SECONDS,
          { timeout: 45_000 },
        )
        .catch(() => {});
      const r = await read();
      verbose('plays', player, url, r);
      assert.deepEqual([...r.lab.errors, ...r.consoleErrors], [], `no player errors: ${describeCell(r)}`);
      assert.ok(r.quality.currentTime >= PLAY_SECONDS, `played ≥ ${PLAY_SECONDS} s: ${describeCell(r)}`);
      assert.ok(r.quality.totalVideoFrames > 0, `decoded frames: ${describeCell(r)}`);
      return r;
    } finally {
      await context.close();
    }
  }

  /** The cell does not play: the player reports an error within 20 s, and the media did not get to PLAY_SECONDS. */
  async function fails(player: string, url: string, o: CellOptions = {}): Promise<CellResult> {
    const { page, context, read } = await openCell(player, url, o);
    try {
      await page
        .waitForFunction(() => (window as unknown as { lab: LabState }).lab.errors.length > 0, null, {
          timeout: 20_000,
        })
        .catch(() => {});
      const r = await read();
      verbose('fails', player, url, r);
      assert.ok(r.lab.errors.length > 0, `the player reports an error: ${describeCell(r)}`);
      assert.ok(r.quality.currentTime < PLAY_SECONDS, `did not play: ${describeCell(r)}`);
      return r;
    } finally {
      await context.close();
    }
  }

  const isLicence = (u: URL) => u.pathname.endsWith('/clearkey');
  const isKey = (u: URL) => u.pathname.endsWith('/key.bin');

  /**
   * A wrong key for the right KID: the page's licence request goes to the server as the player sent it, and each
   * key of a 200 answer reaches the player with its bytes inverted. `served()` says whether one did.
   */
  function wrongLicence() {
    let altered = 0;
    return {
      served: () => altered > 0,
      route: (page: Page) =>
        page.route(isLicence, async (route: Route) => {
          if (route.request().method() !== 'POST') return route.continue();
          const res = await route.fetch();
          if (!res.ok()) return route.fulfill({ response: res });
          const json = (await res.json()) as { keys: { kty: string; kid: string; k: string }[] };
          altered++;
          await route.fulfill({
            response: res,
            json: { ...json, keys: json.keys.map((k) => ({ ...k, k: flip(k.k) })) },
          });
        }),
    };
  }

  /** A wrong key for the KID reaches the player: it must fail to decode (the media really is encrypted). */
  async function wrongKeyFails(player: string, url: string, o: CellOptions = {}) {
    const wrong = wrongLicence();
    const r = await fails(player, url, { ...o, route: wrong.route });
    assert.ok(wrong.served(), `a licence was served (with the key inverted): ${describeCell(r)}`);
    assert.match(r.lab.errors.join(' '), /DECODE|decrypt|3016/i, describeCell(r));
    return r;
  }

  /** The init of `rid` as served for a DASH asset: its sample entry and protection scheme. */
  async function initOf(t: TokenJson, rid: string) {
    const mpd = await (await fetch(abs(t.playback.dash!))).text();
    const init = /initialization="([^"]+)"/.exec(mpd)?.[1];
    assert.ok(init, mpd);
    const u = new URL(init.replace(/\$RepresentationID\$/, rid).replace(/&amp;/g, '&'), abs(t.playback.dash!)).href;
    const s = Buffer.from(await (await fetch(u)).arrayBuffer()).toString('latin1');
    return {
      entry: /enc[va]/.exec(s)?.[0] ?? '',
      frma: s.includes('frma'),
      schm: /schm.{4}(cenc|cbcs)/s.exec(s)?.[1] ?? '',
      pssh: s.includes('pssh'),
    };
  }

  /** A W3C ClearKey licence request for the KID of the MPD, as the CDM writes it. */
  async function licenceBody(t: TokenJson): Promise<string> {
    const mpd = await (await fetch(abs(t.playback.dash!))).text();
    const kid = /cenc:default_KID="([0-9a-f-]+)"/.exec(mpd)?.[1];
    assert.ok(kid, mpd);
    const b64 = Buffer.from(kid.replace(/-/g, ''), 'hex').toString('base64url');
    return JSON.stringify({ kids: [b64], type: 'temporary' });
  }

  describe('signed, clear (the token in the manifest URL only)', () => {
    let t: TokenJson;
    before(async () => {
      t = await switchTo('none');
    });
    it('hls.js plays HLS from the manifest URL with its token', async () => {
      await plays('hls.js', abs(t.playback.hls!));
    });
    it('dash.js plays DASH from the manifest URL with its token', async () => {
      await plays('dash.js', abs(t.playback.dash!));
    });
    it('Shaka Player plays DASH from the manifest URL with its token', async () => {
      await plays('shaka', abs(t.playback.dash!));
    });
    it('control: the same manifest URLs without the token are 403, and each player reports the error', async () => {
      const hls = stripToken(abs(t.playback.hls!));
      const dash = stripToken(abs(t.playback.dash!));
      assert.equal((await fetch(hls)).status, 403);
      assert.equal((await fetch(dash)).status, 403);
      const h = await fails('hls.js', hls);
      assert.match(h.lab.errors.join(' '), /manifestLoadError 403/, describeCell(h));
      const d = await fails('dash.js', dash);
      assert.ok(d.requests.length > 0 && d.requests.every((x) => x === 'GET manifest.mpd → 403'), describeCell(d));
      // dash.js 25 MANIFEST_LOADER_LOADING_FAILURE (it does not put the status in the error).
      assert.match(d.lab.errors.join(' '), /"code":25\b/, describeCell(d));
      const s = await fails('shaka', dash);
      // Shaka 1001 BAD_HTTP_STATUS with the status in its data.
      assert.match(s.lab.errors.join(' '), /\b1001\b.*\b403\b/, describeCell(s));
    });
  });

  describe('cenc (DASH, ClearKey)', () => {
    let t: TokenJson;
    let license = '';
    before(async () => {
      t = await switchTo('cenc');
      assert.ok(t.playback.drm, 'drm in the token answer');
      license = abs(t.playback.drm.clearkey.licenseUrl);
      const want = { frma: true, schm: 'cenc', pssh: true };
      assert.deepEqual(await initOf(t, 'v0'), { entry: 'encv', ...want }, 'the served video init is cenc');
      assert.deepEqual(await initOf(t, 'a0'), { entry: 'enca', ...want }, 'the served audio init is cenc');
    });
    // Shaka 5 prefers a ClearKey licence URL from the MPD (dashif:Laurl) to its drm.servers (drm_engine.js,
    // "Preference 1"), so these two cells both depend on the MPD's Laurl.
    it('Shaka Player plays it (drm.servers org.w3.clearkey = licence URL)', async () => {
      const r = await plays('shaka', abs(t.playback.dash!), { license });
      assert.ok(r.requests.includes('POST clearkey?token → 200'), describeCell(r));
      assert.ok(r.quality.mediaKeys, 'MediaKeys attached');
    });
    it('Shaka Player plays it from the MPD alone (the licence URL from dashif:Laurl)', async () => {
      const r = await plays('shaka', abs(t.playback.dash!));
      assert.ok(r.requests.includes('POST clearkey?token → 200'), describeCell(r));
    });
    it('dash.js plays it (protectionData org.w3.clearkey serverURL = licence URL)', async () => {
      const r = await plays('dash.js', abs(t.playback.dash!), { license });
      assert.ok(r.requests.includes('POST clearkey?token → 200'), describeCell(r));
      assert.ok(r.quality.mediaKeys, 'MediaKeys attached');
    });
    it('dash.js plays it from the MPD alone (the licence URL from dashif:Laurl)', async () => {
      const r = await plays('dash.js', abs(t.playback.dash!));
      assert.ok(r.requests.includes('POST clearkey?token → 200'), describeCell(r));
    });
    it('control: Shaka given a wrong key for the KID does not play', async () => {
      await wrongKeyFails('shaka', abs(t.playback.dash!), { license });
    });
    it('control: dash.js given a wrong key for the KID does not play', async () => {
      await wrongKeyFails('dash.js', abs(t.playback.dash!));
    });
    it('the licence endpoint takes the CDM message as players send it: no Content-Type (hls.js, Shaka)', async () => {
      const body = await licenceBody(t);
      const typed = await fetch(license, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(typed.status, 200, await typed.clone().text());
      // What hls.js (XHR send of the message's ArrayBuffer) and Shaka (fetch of a Uint8Array) send: no header.
      const raw = await fetch(license, { method: 'POST', body: new TextEncoder().encode(body) });
      assert.equal(raw.status, 200, `no Content-Type: ${raw.status} ${await raw.text()}`);
    });
    it('without a valid token the licence is refused (403)', async () => {
      const body = await licenceBody(t);
      const post = (u: string) => fetch(u, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const ok = await post(license);
      assert.equal(ok.status, 200);
      assert.equal(((await ok.json()) as { keys: unknown[] }).keys.length, 1);
      const bare = stripToken(license);
      const refused = await post(bare);
      assert.equal(refused.status, 403, await refused.text());
      const forged = new URL(license);
      forged.searchParams.set('token', `${t.token.slice(0, -6)}AAAAAA`);
      assert.equal((await post(forged.href)).status, 403, 'a token with a broken signature');
    });
    it('a player given the licence URL without its token does not play (dash.js; Shaka through the MPD)', async () => {
      const bare = stripToken(license);
      const d = await fails('dash.js', abs(t.playback.dash!), { license: bare });
      assert.ok(d.requests.includes('POST clearkey → 403'), describeCell(d));
      // Shaka takes a ClearKey licence URL from the MPD over its own drm.servers (drm_engine.js, "Preference 1"):
      // the MPD it reads here has the token-less URL as its dashif:Laurl.
      const s = await fails('shaka', abs(t.playback.dash!), {
        route: (page) =>
          page.route(
            (u) => u.pathname.endsWith('/manifest.mpd'),
            async (route) => {
              const res = await route.fetch();
              const text = (await res.text()).replace(
                /<dashif:Laurl>[^<]*<\/dashif:Laurl>/g,
                `<dashif:Laurl>${bare}</dashif:Laurl>`,
              );
              await route.fulfill({ response: res, body: text });
            },
          ),
      });
      assert.ok(s.requests.includes('POST clearkey → 403'), describeCell(s));
    });
  });

  describe('cbcs (DASH and HLS SAMPLE-AES, ClearKey)', () => {
    let t: TokenJson;
    let license = '';
    before(async () => {
      t = await switchTo('cbcs');
      license = abs(t.playback.drm!.clearkey.licenseUrl);
      const want = { frma: true, schm: 'cbcs', pssh: true };
      assert.deepEqual(await initOf(t, 'v0'), { entry: 'encv', ...want }, 'the served video init is cbcs');
      assert.deepEqual(await initOf(t, 'a0'), { entry: 'enca', ...want }, 'the served audio init is cbcs');
    });
    it('Shaka Player plays DASH cbcs', async () => {
      const r = await plays('shaka', abs(t.playback.dash!), { license });
      assert.ok(r.requests.includes('POST clearkey?token → 200'), describeCell(r));
    });
    it('control: Shaka given a wrong key for the KID does not play cbcs', async () => {
      await wrongKeyFails('shaka', abs(t.playback.dash!), { license });
    });
    it('hls.js plays HLS SAMPLE-AES (cbcs) through EME ClearKey', async () => {
      const { text } = await mediaPlaylist(abs(t.playback.hls!));
      assert.match(
        text,
        /#EXT-X-KEY:METHOD=SAMPLE-AES,URI="data:text\/plain;base64,[^"]+",KEYFORMAT="org\.w3\.clearkey"/,
      );
      const r = await plays('hls.js', abs(t.playback.hls!), { eme: true, license });
      assert.ok(r.requests.includes('POST clearkey?token → 200'), describeCell(r));
      assert.ok(r.quality.mediaKeys, 'MediaKeys attached');
    });
    it('control: hls.js given a wrong key for the KID does not play SAMPLE-AES', async () => {
      await wrongKeyFails('hls.js', abs(t.playback.hls!), { eme: true, license });
    });
    it('control: hls.js given the licence URL without its token does not play SAMPLE-AES', async () => {
      const r = await fails('hls.js', abs(t.playback.hls!), { eme: true, license: stripToken(license) });
      assert.ok(r.requests.includes('POST clearkey → 403'), describeCell(r));
    });
  });

  describe('AES-128 (HLS)', () => {
    let t: TokenJson;
    before(async () => {
      t = await switchTo('aes-128');
    });
    it('hls.js plays it (the key URI with the token, from the playlist)', async () => {
      const { url, text } = await mediaPlaylist(abs(t.playback.hls!));
      assert.match(text, /#EXT-X-KEY:METHOD=AES-128,URI="key\.bin\?token=/);
      const seg = text.split('\n').find((l) => /\.m4s/.test(l));
      assert.ok(seg, text);
      const bytes = Buffer.from(await (await fetch(new URL(seg, url))).arrayBuffer());
      assert.deepEqual(topBoxes(bytes), [], 'the served segment is not clear ISO BMFF');
      const r = await plays('hls.js', abs(t.playback.hls!));
      assert.ok(r.requests.includes('GET key.bin?token → 200'), describeCell(r));
    });
    it('control: hls.js given a wrong key does not play', async () => {
      let served = 0;
      const r = await fails('hls.js', abs(t.playback.hls!), {
        route: (page) =>
          page.route(isKey, async (route) => {
            const res = await route.fetch();
            const key = await res.body();
            if (res.ok() && key.length === 16) served++;
            await route.fulfill({ response: res, body: Buffer.from(key.map((x) => x ^ 0xff)) });
          }),
      });
      assert.ok(served > 0, `the key was served (inverted): ${describeCell(r)}`);
      assert.match(r.lab.errors.join(' '), /fragParsingError|fragDecryptError/, describeCell(r));
    });
    it('control: hls.js with the key request refused (its token taken off) does not play', async () => {
      const r = await fails('hls.js', abs(t.playback.hls!), {
        route: (page) => page.route(isKey, (route) => route.continue({ url: stripToken(route.request().url()) })),
      });
      assert.match(r.lab.errors.join(' '), /keyLoadError 403/, describeCell(r));
    });
  });
});
