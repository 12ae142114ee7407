import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasCmcd, MAX_CMCD_BYTES, parseCmcd, parseCmcdRequest } from './cmcd.ts';

// What Shaka Player 5.2 (CMCD v1, useHeaders) sent for a video segment during startup, as captured on the watch page.
const SHAKA_VIDEO = {
  'cmcd-request': 'dl=0,nor="..%2F..%2Fr1-1%2Fv3%2F1.m4s",su',
  'cmcd-object': 'br=164,d=1000,ot=v,tb=2355',
  'cmcd-status': 'rtp=1600',
  'cmcd-session': 'cid="fovasdslblx4vvg7",sid="b85b43e2-016b-4cde-acbd-1f0f84159bbc",st=v',
};
const SHAKA_MANIFEST = {
  'cmcd-object': 'ot=m',
  'cmcd-session': 'cid="fovasdslblx4vvg7",sf=d,sid="b85b43e2-016b-4cde-acbd-1f0f84159bbc",st=v',
};

test('Shaka headers: every key typed, the four headers merged', () => {
  assert.deepEqual(parseCmcdRequest(SHAKA_VIDEO, '/v/x/r1-1/v3/0.m4s'), {
    dl: 0,
    nor: '..%2F..%2Fr1-1%2Fv3%2F1.m4s',
    su: true,
    br: 164,
    d: 1000,
    ot: 'v',
    tb: 2355,
    rtp: 1600,
    cid: 'fovasdslblx4vvg7',
    sid: 'b85b43e2-016b-4cde-acbd-1f0f84159bbc',
    st: 'v',
  });
  assert.deepEqual(parseCmcdRequest(SHAKA_MANIFEST, '/v/x/manifest.mpd'), {
    ot: 'm',
    cid: 'fovasdslblx4vvg7',
    sf: 'd',
    sid: 'b85b43e2-016b-4cde-acbd-1f0f84159bbc',
    st: 'v',
  });
  assert.equal(hasCmcd(SHAKA_MANIFEST, '/v/x/manifest.mpd'), true);
  assert.equal(hasCmcd({ range: 'bytes=0-' }, '/v/x/manifest.mpd'), false);
  assert.equal(parseCmcdRequest({}, '/v/x/manifest.mpd'), null);
});

test('the CTA-5004 §4 examples, booleans, decimals, custom and unknown keys', () => {
  assert.deepEqual(
    parseCmcd('br=3200,bs,d=4004,mtp=25400,ot=v,rtp=15000,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",tb=6000'),
    {
      br: 3200,
      bs: true,
      d: 4004,
      mtp: 25400,
      ot: 'v',
      rtp: 15000,
      sid: '6e2fb550-c457-11e9-bb97-0800200c9a66',
      tb: 6000,
    },
  );
  assert.deepEqual(parseCmcd('pr=1.25,sf=h,st=l,v=1'), { pr: 1.25, sf: 'h', st: 'l', v: 1 });
  // Custom keys (hyphenated prefix), unknown keys of every type, parameters: read and ignored.
  assert.deepEqual(
    parseCmcd('com.example-myNumericKey=500,com.example-myStringKey="x",zz=tok/en:1,yy=?0,xx=(1 2);p=1,ot=a'),
    { ot: 'a' },
  );
  // CMCD v2 forms: booleans as ?1/?0, numbers as inner lists.
  assert.deepEqual(parseCmcd('su=?1,bs=?0,br=(3000 128),bl=(1200),v=2'), {
    su: true,
    bs: false,
    br: 3000,
    bl: 1200,
    v: 2,
  });
  // Escapes in strings; spaces after commas (RFC 8941 OWS); a key given twice: the last one.
  assert.deepEqual(parseCmcd('cid="a\\"b\\\\c",  sid="s1",\tsid="s2"'), { cid: 'a"b\\c', sid: 's2' });
  assert.deepEqual(parseCmcd('ot=av'), { ot: 'av' });
  assert.deepEqual(parseCmcd('ot=tt,d=0'), { ot: 'tt', d: 0 });
});

test('malformed input and wrong types are null', () => {
  const bad = [
    '',
    ' ',
    ',',
    'br=1,',
    ',br=1',
    'br=1,,d=2',
    'Br=1',
    '1br=1',
    'br=',
    'br=1x',
    'br=-1',
    'br=1.5',
    'br="1"',
    'br=1234567890123456',
    'pr=1.2345',
    'pr=1.',
    'pr=-1',
    'pr="1"',
    'sid=abc',
    `sid="${'x'.repeat(65)}"`,
    'sid="abc',
    'sid="a\\b"',
    'sid="é"',
    'sid="tab\there"',
    'ot=x',
    'ot="v"',
    'ot=(v)',
    'sf=q',
    'st=vod',
    'su=1',
    'su="true"',
    'bs=?2',
    'bs=?',
    'xx=(1 2',
    'xx=(1  2)x',
    'xx=@',
    'br=1;',
    'br=1 d=2',
    'br = 1',
    'cid="a"sid="b"',
  ];
  for (const s of bad) assert.equal(parseCmcd(s), null, JSON.stringify(s));
});

test('requests: the query form, header priority, the 1 KiB bound, a bad part spoils the whole', () => {
  const q = `?CMCD=${encodeURIComponent('bl=1000,br=164,d=1000,ot=v,sid="s-1",su')}&token=t`;
  assert.deepEqual(parseCmcdRequest({}, `/v/a/r/v0/1.m4s${q}`), {
    bl: 1000,
    br: 164,
    d: 1000,
    ot: 'v',
    sid: 's-1',
    su: true,
  });
  assert.deepEqual(parseCmcdRequest({ 'cmcd-object': 'br=200' }, `/v/a/r/v0/1.m4s${q}`)?.br, 200);
  assert.equal(parseCmcdRequest({}, '/v/a/r/v0/1.m4s?CMCD=%E0%A4%A'), null);
  assert.equal(parseCmcdRequest({}, '/v/a/r/v0/1.m4s?CMCD=br%3D1%2C'), null);
  assert.equal(parseCmcdRequest({ ...SHAKA_VIDEO, 'cmcd-status': 'rtp=x' }, '/v/a'), null);
  // Repeated headers (an array, or joined by Node) are one dictionary.
  assert.deepEqual(parseCmcdRequest({ 'cmcd-object': ['br=1', 'd=2'] }, '/v/a'), { br: 1, d: 2 });
  assert.deepEqual(parseCmcdRequest({ 'cmcd-object': 'br=1, d=2' }, '/v/a'), { br: 1, d: 2 });
  // Over the bound in one header, or in all of them together.
  const long = `nor="${'a'.repeat(MAX_CMCD_BYTES)}"`;
  assert.equal(parseCmcdRequest({ 'cmcd-request': long }, '/v/a'), null);
  const third = `cid="${'c'.repeat(60)}",xx="${'x'.repeat(300)}"`;
  assert.ok(parseCmcdRequest({ 'cmcd-request': third, 'cmcd-object': third }, '/v/a'));
  assert.equal(parseCmcdRequest({ 'cmcd-request': third, 'cmcd-object': third, 'cmcd-status': third }, '/v/a'), null);
});

test('fuzz: random bytes and mutated Shaka headers end fast, with null or a typed record', () => {
  let seed = 0x5eed;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const valid = Object.values(SHAKA_VIDEO).concat(Object.values(SHAKA_MANIFEST), [
    'br=(3000 128),su=?1,bs',
    'com.example-k="v",pr=1.5',
  ]);
  const alphabet = '=,;"\\()?.- \t01239abvtsu*:/%\u00e9\u0000';
  const started = performance.now();
  let records = 0;
  for (let i = 0; i < 20_000; i++) {
    let s: string;
    if (i % 4 === 0) {
      s = Array.from({ length: rand(200) }, () => String.fromCharCode(rand(256))).join('');
    } else {
      const chars = [...valid[rand(valid.length)]!];
      for (let m = rand(4) + 1; m > 0; m--) {
        const at = rand(chars.length + 1);
        const op = rand(3);
        const c = alphabet[rand(alphabet.length)]!;
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, c);
        else chars[at] = c;
      }
      s = chars.join('');
    }
    const r = parseCmcd(s);
    if (r === null) continue;
    records++;
    for (const [k, v] of Object.entries(r)) {
      if (['br', 'd', 'tb', 'bl', 'dl', 'mtp', 'rtp', 'v'].includes(k)) assert.ok(Number.isInteger(v) && v >= 0, s);
      if (['su', 'bs'].includes(k)) assert.equal(typeof v, 'boolean', s);
      if (['sid', 'cid'].includes(k)) assert.ok(typeof v === 'string' && v.length <= 64, s);
    }
  }
  // Worst case for time: the longest accepted input, deeply repetitive.
  for (const s of ['a,'.repeat(511), `${'('.repeat(1)}${'1 '.repeat(500)})`, `"${'\\"'.repeat(500)}"`]) parseCmcd(s);
  const ms = performance.now() - started;
  assert.ok(records > 1000, `mutations kept some records valid: ${records}`);
  assert.ok(ms < 2000, `20,000 parses took ${ms.toFixed(0)} ms`);
});
