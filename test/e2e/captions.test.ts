// End to end: text tracks. Subtitle tracks of the source (SubRip, ASS, mov_text; a PGS one skipped) and sidecar
// files (API, CLI, `import --captions`) served through HLS (segmented WebVTT), DASH (the whole file) and export, with
// cue times checked against ffmpeg's own reading of the source, shifted onto the renditions' timeline.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AssetJson, CaptionJson } from '../../src/roles/api/present.ts';
import {
  api,
  assertCues,
  dashText,
  errorCode,
  FRAME,
  hlsCues,
  hlsSubtitles,
  parseVtt,
  sourceCues,
} from '../helpers/captions.ts';
import { plainClip, SIDECAR_CUES, type SubtitledSource, srt, srtFile, subtitledSources } from '../helpers/inputs.ts';
import { cli, importSettled, settled, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { fetchText, parseMediaPlaylist, parseMultivariant, segmentPackets } from '../helpers/verify.ts';

describe('text tracks: embedded, sidecar, served through HLS, DASH and export', () => {
  let p: TestPlatform;
  let sources: SubtitledSource[];
  const embedded = new Map<string, AssetJson>();
  let plain: AssetJson;
  let importedWithCaptions: AssetJson;
  const offsets = new Map<string, number>();
  /** When the first video frame is presented in our segments (the B-frame delay): where source t = 0 lands. */
  const offsetOf = async (a: AssetJson): Promise<number> => {
    let o = offsets.get(a.id);
    if (o === undefined) {
      const [top] = parseMultivariant(await fetchText(master(a)), master(a)).video;
      const pl = parseMediaPlaylist(await fetchText(top!.uri));
      const ps = await segmentPackets(new URL(pl.map, top!.uri).href, new URL(pl.segments[0]!.uri, top!.uri).href);
      o = Math.min(...ps.map((x) => x.pts));
      assert.ok(o >= 0 && o <= 3 * FRAME, `${a.id}: first video pts ${o}`);
      offsets.set(a.id, o);
    }
    return o;
  };
  const master = (a: AssetJson) => new URL(a.playback.hls!, p.url).href;
  const mpds = (a: AssetJson) => [a.playback.dash!, a.playback.dashSegmentBase!].map((u) => new URL(u, p.url).href);

  before(async () => {
    p = await startTestPlatform({ encode: { preset: 'ultrafast' } });
    const [subs, clip] = await Promise.all([subtitledSources(), plainClip()]);
    sources = subs;
    const withCaptions = async () => {
      const r = await cli([
        ...['import', '--data', p.dataDir, '--json', '--no-wait'],
        ...['--captions', `${srtFile(SIDECAR_CUES, 'sidecar')}:de`, clip],
      ]);
      assert.equal(r.code, 0, r.stderr);
      return settled(p, (JSON.parse(r.stdout) as AssetJson).id);
    };
    const all = await Promise.all([
      ...sources.map((s) => importSettled(p, s.file)),
      importSettled(p, clip),
      withCaptions(),
    ]);
    for (const [i, s] of sources.entries()) embedded.set(s.name, all[i]!);
    plain = all[sources.length]!;
    importedWithCaptions = all[sources.length + 1]!;
    for (const a of all) assert.equal(a.status, 'ready', JSON.stringify(a.error));
  });

  after(async () => {
    await p?.stop();
  });

  it('lists every text subtitle track of the source with its language and label; skips a PGS one with a note', () => {
    for (const s of sources) {
      const a = embedded.get(s.name)!;
      assert.deepEqual(
        a.captions.map((c) => [c.language, c.label, c.source, c.cues, c.default, c.forced]),
        s.tracks.map((t) => [t.language, t.label, 'embedded', t.cues.length, false, false]),
        s.name,
      );
      for (const c of a.captions) {
        assert.match(c.id, /^c[a-z2-7]{12}$/);
        assert.ok(c.url?.endsWith(`/${c.id}.vtt`), c.url ?? 'no url');
      }
      const skipped = a.notes.filter((n) => /skipped/i.test(n) && /pgs/i.test(n));
      assert.equal(skipped.length, s.imageTracks, `${s.name}: notes ${JSON.stringify(a.notes)}`);
    }
  });

  it("serves each track's cues through HLS, DASH and byte-range HLS on the presentation timeline", async () => {
    for (const s of sources) {
      const a = embedded.get(s.name)!;
      const offset = await offsetOf(a);
      const hls = hlsSubtitles(await fetchText(master(a)), master(a));
      assert.deepEqual(
        hls.map((h) => [h.language, h.name]),
        s.tracks.map((t) => [t.language, t.label]),
        s.name,
      );
      const dash = await Promise.all(mpds(a).map(async (u) => dashText(await fetchText(u), u)));
      const brUrl = new URL(a.playback.hlsByteRange!, p.url).href;
      const br = hlsSubtitles(await fetchText(brUrl), brUrl);
      for (const [i, t] of s.tracks.entries()) {
        const what = `${s.name}, track ${i} (${t.codec}, ${t.language})`;
        const ref = await sourceCues(s.file, i);
        // The reference itself: ffmpeg reads back the cues we wrote (to the ms).
        assertCues(ref, t.cues, 0, `${what}: ffmpeg's reading of the source`, 0.001);
        const c = a.captions[i]!;
        assert.ok(hls[i]!.playlist.endsWith(`/${c.id}.m3u8`), hls[i]!.playlist);
        assertCues(await hlsCues(hls[i]!.playlist), ref, offset, `${what} through HLS`);
        for (const sets of dash) {
          assert.equal(sets.length, s.tracks.length, what);
          assert.equal(sets[i]!.lang, t.language, what);
          assert.ok(sets[i]!.file.endsWith(`/${c.id}.vtt`), sets[i]!.file);
          assertCues(parseVtt(await fetchText(sets[i]!.file)), ref, offset, `${what} through DASH`);
        }
        assert.ok(br[i]!.playlist.endsWith(`/${c.id}-br.m3u8`), br[i]!.playlist);
        const one = parseMediaPlaylist(await fetchText(br[i]!.playlist));
        assert.equal(one.segments.length, 1, what);
        const whole = new URL(one.segments[0]!.uri, br[i]!.playlist).href;
        assertCues(parseVtt(await fetchText(whole)), ref, offset, `${what} through byte-range HLS`);
      }
    }
  });

  it('adds a sidecar .srt at once (no re-encode), serves it, and removes it', async () => {
    const id = plain.id;
    const offset = await offsetOf(plain);
    const list = async () => (await p.get<{ captions: CaptionJson[] }>(`/api/assets/${id}/captions`)).captions;
    const before = await fetchText(master(plain));
    const beforeMpds = await Promise.all(mpds(plain).map(fetchText));
    const videoBefore = parseMultivariant(before, master(plain)).video;
    const playlistsBefore = await Promise.all(videoBefore.map((v) => fetchText(v.uri)));
    assert.equal(hlsSubtitles(before, master(plain)).length, 0);
    assert.deepEqual(await list(), []);

    const added: CaptionJson[] = [];
    for (let round = 0; round < 2; round++) {
      const r = await api(
        p,
        'POST',
        `/api/assets/${id}/captions`,
        srt(SIDECAR_CUES),
        '?language=fr-CA&label=Québécois',
      );
      assert.equal(r.status, 201, r.text);
      const c = r.json as unknown as CaptionJson;
      assert.deepEqual([c.language, c.label, c.source, c.cues], ['fr-CA', 'Québécois', 'sidecar', 3]);
      assert.ok(!added.some((x) => x.id === c.id), 'a fresh id each time');
      added.push(c);
      assert.deepEqual(
        (await list()).map((x) => x.id),
        added.map((x) => x.id),
      );
      const now = await fetchText(master(plain));
      const subs = hlsSubtitles(now, master(plain));
      assert.deepEqual(
        subs.map((s) => [s.language, s.playlist.split('/').pop()]),
        added.map((x) => ['fr-CA', `${x.id}.m3u8`]),
      );
      // Nothing re-encoded: the same variants, the same video playlists (rev and segment URLs).
      const video = parseMultivariant(now, master(plain)).video;
      assert.deepEqual(
        video.map((v) => v.uri),
        videoBefore.map((v) => v.uri),
      );
      assert.deepEqual(await Promise.all(video.map((v) => fetchText(v.uri))), playlistsBefore);
      for (const u of mpds(plain)) {
        const sets = dashText(await fetchText(u), u);
        assert.deepEqual(
          sets.map((s) => [s.lang, s.file.split('/').pop()]),
          added.map((x) => ['fr-CA', `${x.id}.vtt`]),
          u,
        );
      }
      assertCues(parseVtt(await fetchText(new URL(c.url!, p.url).href)), SIDECAR_CUES, offset, 'sidecar .vtt');
      assertCues(await hlsCues(subs[round]!.playlist), SIDECAR_CUES, offset, 'sidecar through HLS');
    }

    for (const [i, c] of added.entries()) {
      const r = await api(p, 'DELETE', `/api/assets/${id}/captions/${c.id}`);
      assert.equal(r.status, 204, r.text);
      assert.deepEqual(
        (await list()).map((x) => x.id),
        added.slice(i + 1).map((x) => x.id),
      );
      const subs = hlsSubtitles(await fetchText(master(plain)), master(plain));
      assert.ok(!subs.some((s) => s.playlist.includes(c.id)), 'gone from the master playlist');
      for (const u of mpds(plain)) assert.ok(!(await fetchText(u)).includes(c.id), `gone from ${u}`);
    }
    assert.equal(await fetchText(master(plain)), before, 'the master playlist is as before');
    assert.deepEqual(await Promise.all(mpds(plain).map(fetchText)), beforeMpds);
    const again = await api(p, 'DELETE', `/api/assets/${id}/captions/${added[0]!.id}`);
    assert.equal(again.status, 404);
    assert.equal(errorCode(again), 'CAPTION_NOT_FOUND');
  });

  it('adds, lists and removes captions from the CLI, and imports with --captions FILE:de', async () => {
    const id = plain.id;
    const offset = await offsetOf(plain);
    const file = srtFile(SIDECAR_CUES, 'sidecar');
    const data = ['--data', p.dataDir];
    const add = await cli(['captions', 'add', id, file, '--lang', 'de', '--label', 'Deutsch', ...data, '--json']);
    assert.equal(add.code, 0, add.stderr);
    const c = JSON.parse(add.stdout) as CaptionJson;
    assert.deepEqual([c.language, c.label, c.source, c.cues], ['de', 'Deutsch', 'sidecar', 3]);
    const ls = await cli(['captions', 'ls', id, ...data, '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(
      ls.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as CaptionJson).id),
      [c.id],
    );
    const subs = hlsSubtitles(await fetchText(master(plain)), master(plain));
    assert.deepEqual(
      subs.map((s) => [s.language, s.name]),
      [['de', 'Deutsch']],
    );
    assertCues(await hlsCues(subs[0]!.playlist), SIDECAR_CUES, offset, 'CLI-added track through HLS');
    const rm = await cli(['captions', 'rm', id, c.id, ...data]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual((await p.get<{ captions: unknown[] }>(`/api/assets/${id}/captions`)).captions, []);
    assert.equal(hlsSubtitles(await fetchText(master(plain)), master(plain)).length, 0);

    const a = importedWithCaptions;
    assert.equal(await offsetOf(a), offset);
    assert.deepEqual(
      a.captions.map((x) => [x.language, x.source, x.cues]),
      [['de', 'sidecar', 3]],
    );
    const [imported] = hlsSubtitles(await fetchText(master(a)), master(a));
    assert.equal(imported?.language, 'de');
    assertCues(await hlsCues(imported.playlist), SIDECAR_CUES, offset, '--captions track through HLS');
    const [set] = dashText(await fetchText(mpds(a)[0]!), mpds(a)[0]!);
    assertCues(parseVtt(await fetchText(set!.file)), SIDECAR_CUES, offset, '--captions track through DASH');
  });

  it('refuses bad caption input with a clear code and changes nothing', async () => {
    const a = embedded.get(sources[1]!.name)!;
    const path = `/api/assets/${a.id}/captions`;
    const snapshot = async () => [(await api(p, 'GET', path)).text, await fetchText(master(a))];
    const before = await snapshot();
    const good = srt(SIDECAR_CUES);
    const cue = (n: number, from: string, to: string, text: string) => `${n}\n${from} --> ${to}\n${text}\n`;
    const cases: {
      name: string;
      body: NonNullable<RequestInit['body']>;
      query?: string;
      status: number;
      code: string;
    }[] = [
      {
        name: 'random bytes',
        body: new Uint8Array(Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256))),
        status: 400,
        code: 'CAPTION_INVALID',
      },
      {
        name: 'a PNG',
        body: new Uint8Array(Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex')),
        status: 400,
        code: 'CAPTION_INVALID',
      },
      {
        name: 'invalid UTF-8',
        body: new Uint8Array(Buffer.from(cue(1, '00:00:01,000', '00:00:02,000', 'Caf\xe9'), 'latin1')),
        status: 400,
        code: 'CAPTION_INVALID',
      },
      {
        name: 'cues out of order',
        body: `${cue(1, '00:00:05,000', '00:00:06,000', 'late')}\n${cue(2, '00:00:01,000', '00:00:02,000', 'early')}`,
        status: 400,
        code: 'CAPTION_INVALID',
      },
      {
        name: 'end before start',
        body: cue(1, '00:00:03,000', '00:00:02,000', 'backwards'),
        status: 400,
        code: 'CAPTION_INVALID',
      },
      { name: 'malformed timing', body: cue(1, '00:00:01,000', 'soon', 'when?'), status: 400, code: 'CAPTION_INVALID' },
      { name: 'no cue', body: 'WEBVTT\n\n', status: 400, code: 'CAPTION_INVALID' },
      { name: 'empty body', body: '', status: 400, code: 'CAPTION_INVALID' },
      { name: 'unknown language', body: good, query: '?language=xx', status: 400, code: 'LANGUAGE_INVALID' },
      {
        name: 'ill-formed language tag',
        body: good,
        query: '?language=not%20a%20tag',
        status: 400,
        code: 'LANGUAGE_INVALID',
      },
      { name: 'no language', body: good, query: '', status: 400, code: 'LANGUAGE_INVALID' },
    ];
    for (const c of cases) {
      const r = await api(p, 'POST', path, c.body, c.query ?? '?language=en');
      assert.equal(r.status, c.status, `${c.name}: ${r.text}`);
      assert.equal(errorCode(r), c.code, `${c.name}: ${r.text}`);
    }
    const unknown = await api(p, 'POST', '/api/assets/zzzzzzzzzzzzzzzz/captions', good, '?language=en');
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(errorCode(unknown), 'ASSET_NOT_FOUND');

    // 100 MB announced, a little sent: refused from the header, without waiting for (or reading) the rest.
    const t0 = Date.now();
    const announced = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${p.url}${path}?language=en`, {
        method: 'POST',
        headers: { ...p.auth, 'content-type': 'text/plain', 'content-length': String(100 * 2 ** 20) },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.write(Buffer.alloc(64 * 1024, 'a'));
    });
    assert.equal(announced.status, 413, announced.body);
    assert.equal((JSON.parse(announced.body) as { error: { code: string } }).error.code, 'CAPTION_TOO_LARGE');
    assert.ok(Date.now() - t0 < 5000, `413 after ${Date.now() - t0} ms`);

    // 100 MB streamed with no Content-Length: refused once the limit is passed, long before the end.
    let pulled = 0;
    const chunk = new Uint8Array(256 * 1024).fill(0x61);
    const stream = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (pulled >= 100 * 2 ** 20) return ctrl.close();
        pulled += chunk.length;
        ctrl.enqueue(chunk);
      },
    });
    const t1 = Date.now();
    const streamed = await p.api(`${path}?language=en`, {
      method: 'POST',
      body: stream,
      headers: { 'content-type': 'text/plain' },
      duplex: 'half',
    } as RequestInit);
    assert.equal(streamed.status, 413);
    assert.equal(((await streamed.json()) as { error: { code: string } }).error.code, 'CAPTION_TOO_LARGE');
    assert.ok(Date.now() - t1 < 10_000, `413 after ${Date.now() - t1} ms`);
    assert.ok(pulled < 50 * 2 ** 20, `the server read ${pulled} bytes before refusing`);
    assert.equal((await p.get<{ ok: boolean }>('/healthz')).ok, true);

    // The CLI: a bad caption file stops the import with nothing imported; `captions add` refuses it too.
    const junk = join(mkdtempSync(join(tmpdir(), 'sc-junk-')), 'junk.srt');
    writeFileSync(junk, cue(1, '00:00:03,000', '00:00:02,000', 'backwards'));
    const count = async () => (await p.get<{ assets: unknown[] }>('/api/assets')).assets.length;
    const assets = await count();
    const imp = await cli([
      'import',
      '--data',
      p.dataDir,
      '--json',
      '--no-wait',
      '--captions',
      `${junk}:de`,
      sources[1]!.file,
    ]);
    assert.equal(imp.code, 2, imp.stderr);
    assert.match(imp.stderr, /CAPTION_INVALID/);
    assert.equal(await count(), assets, 'nothing imported');
    const add = await cli(['captions', 'add', a.id, junk, '--lang', 'de', '--data', p.dataDir]);
    assert.notEqual(add.code, 0);
    assert.match(add.stderr, /CAPTION_INVALID/);
    const lang = await cli([
      'captions',
      'add',
      a.id,
      srtFile(SIDECAR_CUES, 'sidecar'),
      '--lang',
      'xx',
      '--data',
      p.dataDir,
    ]);
    assert.notEqual(lang.code, 0);
    assert.match(lang.stderr, /LANGUAGE_INVALID/);

    assert.deepEqual(await snapshot(), before, 'captions and master playlist byte-identical');
  });

  it('exports the text tracks with the asset: one .vtt and one playlist each, referenced by master.m3u8', async () => {
    const s = sources[0]!;
    const a = embedded.get(s.name)!;
    const offset = await offsetOf(a);
    const dir = join(mkdtempSync(join(tmpdir(), 'sc-export-')), 'out');
    const r = await cli(['export', a.id, dir, '--data', p.dataDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const files = readdirSync(dir);
    const exportedMaster = readFileSync(join(dir, 'master.m3u8'), 'utf8');
    const subs = hlsSubtitles(exportedMaster, `file://${dir}/master.m3u8`);
    assert.deepEqual(
      subs.map((x) => [x.language, x.name, x.playlist]),
      a.captions.map((c) => [c.language, c.label, `file://${dir}/${c.id}.m3u8`]),
    );
    const mpd = readFileSync(join(dir, 'manifest.mpd'), 'utf8');
    for (const [i, c] of a.captions.entries()) {
      assert.ok(files.includes(`${c.id}.vtt`) && files.includes(`${c.id}.m3u8`), `${c.id}: ${files.join(' ')}`);
      const pl = parseMediaPlaylist(readFileSync(join(dir, `${c.id}.m3u8`), 'utf8'));
      assert.deepEqual(
        pl.segments.map((x) => x.uri),
        [`${c.id}.vtt`],
      );
      const vtt = readFileSync(join(dir, `${c.id}.vtt`), 'utf8');
      assert.equal(vtt, await fetchText(new URL(c.url!, p.url).href), 'the file the origin serves');
      assertCues(parseVtt(vtt), await sourceCues(s.file, i), offset, `exported ${c.id}`);
      assert.match(mpd, new RegExp(`<BaseURL>${c.id}\\.vtt</BaseURL>`));
    }
  });
});
