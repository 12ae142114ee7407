// SmoothAbr's decision logic without a browser: the policy is a pure function of observations (web/src/abr/policy.ts
// has no DOM access — this file type-checks it against Node's types alone).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULTS, Estimator, type Observation, type Rung, SmoothPolicy } from '../../web/src/abr/policy.ts';

// The platform's ladder for a 720p source (video + 128 kb/s audio per variant), as Shaka sees it.
const LADDER: Rung[] = [
  { id: 0, bandwidth: 273_000, width: 416, height: 234, smooth: true },
  { id: 1, bandwidth: 858_000, width: 640, height: 360, smooth: true },
  { id: 2, bandwidth: 1_228_000, width: 768, height: 432, smooth: true },
  { id: 3, bandwidth: 2_128_000, width: 960, height: 540, smooth: true },
  { id: 4, bandwidth: 3_128_000, width: 1280, height: 720, smooth: true },
];

function obs(o: Partial<Observation> = {}): Observation {
  return {
    now: 0,
    bufferAhead: 30,
    paused: false,
    hidden: false,
    playbackRate: 1,
    element: { width: 1280, height: 720 },
    devicePixelRatio: 1,
    live: false,
    started: true,
    playingHeight: null,
    ...o,
  };
}

/** A policy that has seen `n` downloads at `bps` (2 s segments of the 540p rung's size). */
function warmed(bps: number, n = 5, config = {}): SmoothPolicy {
  const p = new SmoothPolicy(config);
  p.setRungs(LADDER);
  const bytes = 500_000;
  for (let i = 0; i < n; i++) p.sample(bytes, (bytes * 8 * 1000) / bps);
  return p;
}

describe('throughput estimate', () => {
  it('is the harmonic mean of recent samples, discounted by the recent prediction error', () => {
    const e = new Estimator(5, 1000);
    for (const mbps of [2, 2, 2]) e.add(250_000, (250_000 * 8) / (mbps * 1000));
    assert.equal(Math.round(e.harmonic() ?? 0), 2_000_000);
    assert.equal(Math.round(e.robust() ?? 0), 2_000_000); // no error made yet
    e.add(250_000, (250_000 * 8) / 500); // 0.5 Mb/s: the estimate (2) was wrong by 300 %
    const h = 4 / (3 / 2e6 + 1 / 0.5e6);
    assert.equal(Math.round(e.harmonic() ?? 0), Math.round(h));
    assert.equal(Math.round(e.robust() ?? 0), Math.round(h / 2)); // the discount is capped at half
  });

  it('aggregates progress chunks until they say something about bandwidth', () => {
    const e = new Estimator(5, 32_000);
    e.add(16_000, 100); // half a sample
    assert.equal(e.count, 0);
    e.add(16_000, 100);
    assert.equal(e.count, 1);
    assert.equal(Math.round(e.harmonic() ?? 0), 1_280_000);
    e.add(-1, 5);
    e.add(Number.NaN, 5);
    assert.equal(e.count, 1);
  });
});

describe('startup choice', () => {
  it('starts well below the assumed 1 Mb/s before any sample, and says so', () => {
    const p = new SmoothPolicy();
    p.setRungs(LADDER);
    const d = p.decide(obs({ bufferAhead: 0, started: false }));
    assert.equal(d?.rung.height, 234);
    assert.match(d?.reason ?? '', /^startup: 1\.0 Mb\/s assumed$/);
  });

  it('starts from an estimate carried over from the previous asset', () => {
    const p = new SmoothPolicy({}, 5e6);
    p.setRungs(LADDER);
    assert.equal(p.decide(obs({ bufferAhead: 0, started: false }))?.rung.height, 720);
  });

  it('uses the robust estimate while the buffer is low', () => {
    const p = warmed(2e6);
    // 0.85 × 2 Mb/s = 1.7: 432p (1.23), not 540p (2.13).
    assert.equal(p.decide(obs({ bufferAhead: 3 }))?.rung.height, 432);
  });
});

describe('hysteresis', () => {
  it('under a steady rate: no down-switch, and at most one up-switch per upInterval', () => {
    const p = new SmoothPolicy();
    p.setRungs(LADDER);
    const ups: number[] = [];
    let downs = 0;
    let prev: Rung | undefined;
    let buffer = 0;
    for (let t = 0; t <= 180; t += 0.5) {
      // A steady 3.5 Mb/s link: a 2 s segment of the current rung every so often; the buffer fills towards 60 s.
      const cur = prev ?? LADDER[0]!;
      if (t % 2 === 0) p.sample((cur.bandwidth * 2) / 8, ((cur.bandwidth * 2) / 3.5e6) * 1000);
      buffer = Math.min(60, buffer + 0.9);
      const d = p.decide(obs({ now: t * 1000, bufferAhead: buffer, started: t > 1 }));
      assert.ok(d);
      if (prev && d.rung.bandwidth > prev.bandwidth) ups.push(t);
      if (prev && d.rung.bandwidth < prev.bandwidth) downs++;
      prev = d.rung;
    }
    assert.equal(downs, 0);
    assert.equal(prev?.height, 720, 'reaches the top rung the link carries');
    for (let i = 1; i < ups.length; i++) {
      assert.ok((ups[i] as number) - (ups[i - 1] as number) >= DEFAULTS.upInterval, `up-switches at ${ups}`);
    }
  });

  it('rides out a short dip on a comfortable buffer, leaves the rung when the buffer cannot pay for it', () => {
    const p = warmed(2.5e6);
    assert.equal(p.decide(obs({ now: 0, bufferAhead: 50 }))?.rung.height, 540);
    // Two slow downloads (1.4 Mb/s): the harmonic mean falls to ~1.9, 540p (2.13) still fits the stay allowance.
    p.sample(500_000, (500_000 * 8 * 1000) / 1.4e6);
    assert.equal(p.decide(obs({ now: 2000, bufferAhead: 48 }))?.rung.height, 540);
    // Much slower and the buffer drained: down.
    for (let i = 0; i < 4; i++) p.sample(500_000, (500_000 * 8 * 1000) / 0.8e6);
    const d = p.decide(obs({ now: 4000, bufferAhead: 12 }));
    assert.ok((d?.rung.height ?? 999) < 540, `${d?.rung.height}`);
  });
});

describe('player size', () => {
  it('never above the smallest rung that covers the element × min(DPR, 2)', () => {
    const p = warmed(20e6);
    const d = p.decide(obs({ element: { width: 640, height: 360 } }));
    assert.equal(d?.rung.height, 360);
    assert.equal(d?.reason, 'capped to 360p: player size');
    assert.equal(p.decide(obs({ element: { width: 660, height: 372 } }))?.rung.height, 432);
    // DPR 3 counts as 2: 640×360 CSS px need 1280×720.
    assert.equal(p.decide(obs({ element: { width: 640, height: 360 }, devicePixelRatio: 3 }))?.rung.height, 720);
    assert.equal(p.decide(obs({ element: { width: 320, height: 180 }, devicePixelRatio: 1.5 }))?.rung.height, 360);
  });

  it('a larger player (resize, fullscreen) lifts the cap at once and replaces the buffered picture', () => {
    const p = warmed(20e6);
    assert.equal(p.decide(obs({ now: 0, element: { width: 640, height: 360 } }))?.rung.height, 360);
    const d = p.decide(obs({ now: 1000, element: { width: 1920, height: 1080 }, bufferAhead: 40 }));
    assert.equal(d?.rung.height, 720);
    assert.equal(d?.clearBuffer, true);
    assert.equal(d?.safeMargin, 4);
    // Not again on the next decision.
    assert.equal(p.decide(obs({ now: 2000, element: { width: 1920, height: 1080 } }))?.clearBuffer, false);
  });
});

describe('dropped frames', () => {
  const feed = (p: SmoothPolicy, from: number, to: number, share: number, o: Partial<Observation> = {}) => {
    for (let t = from; t <= to; t++) {
      const decoded = t * 30;
      p.frameCounts(decoded, Math.round(decoded * share), obs({ now: t * 1000, playingHeight: 720, ...o }));
    }
  };

  it('≥ 15 % over ≥ 5 s caps one rung below the one playing, for 30 s, doubling on a repeat', () => {
    const p = warmed(20e6);
    p.setCurrent(4);
    feed(p, 0, 4, 0.2); // only 4 s: not yet
    assert.equal(p.cpuCap(4000), null);
    feed(p, 5, 6, 0.2);
    assert.equal(p.cpuCap(6000), 540);
    const d = p.decide(obs({ now: 6000 }));
    assert.equal(d?.rung.height, 540);
    assert.equal(d?.reason, 'capped to 540p: dropped frames');
    // Set at 5 s (the first sample spanning 5 s of playback).
    assert.equal(p.cpuCap(34_900), 540);
    assert.equal(p.cpuCap(35_000), null, 'expires after 30 s');
    assert.equal(p.decide(obs({ now: 37_000 }))?.rung.height, 720, 'back up once it expires');
    // Again within 10 minutes: 60 s this time.
    feed(p, 40, 45, 0.3);
    assert.equal(p.cpuCap(45_000 + 59_900), 540);
    assert.equal(p.cpuCap(45_000 + 60_000), null);
  });

  it('ignores drops while hidden, paused or at another rate, and below 15 %', () => {
    for (const o of [{ hidden: true }, { paused: true }, { playbackRate: 2 }]) {
      const p = warmed(20e6);
      feed(p, 0, 20, 0.5, o);
      assert.equal(p.cpuCap(20_000), null, JSON.stringify(o));
    }
    const p = warmed(20e6);
    feed(p, 0, 20, 0.1);
    assert.equal(p.cpuCap(20_000), null);
  });
});

describe('hidden and paused', () => {
  it('hidden → lowest video rung and a small buffer → visible: the goal comes back and quality recovers', () => {
    const p = warmed(10e6);
    const before = p.decide(obs({ now: 0, bufferAhead: 50 }));
    assert.equal(before?.rung.height, 720);
    assert.equal(before?.bufferingGoal, DEFAULTS.vodGoal);
    const hidden = p.decide(obs({ now: 1000, hidden: true, bufferAhead: 50 }));
    assert.equal(hidden?.rung.height, 234);
    assert.equal(hidden?.bufferingGoal, DEFAULTS.smallGoal);
    assert.match(hidden?.reason ?? '', /^hidden/);
    // Back after a minute: the small buffer left, the rung chosen from the bandwidth at once (no up-switch wait).
    const back = p.decide(obs({ now: 61_000, hidden: false, bufferAhead: 5 }));
    assert.equal(back?.bufferingGoal, DEFAULTS.vodGoal);
    assert.equal(back?.rung.height, 720);
    assert.equal(back?.clearBuffer, false, 'nothing worth dropping in 5 s');
  });

  it('paused: a small goal (nothing more fetched once that much is buffered); live: the page’s own goal', () => {
    const p = warmed(10e6);
    assert.equal(p.decide(obs({ paused: true }))?.bufferingGoal, DEFAULTS.smallGoal);
    assert.equal(p.decide(obs({ live: true, bufferAhead: 4 }))?.bufferingGoal, null);
  });

  it('caps the goal so the buffer fits a small device’s byte budget', () => {
    const p = warmed(10e6, 5, { maxBufferBytes: 15e6 });
    // 15 MB at 3.128 Mb/s holds 38 s of the top rung.
    assert.equal(p.decide(obs())?.bufferingGoal, 38);
  });
});

describe('device capabilities', () => {
  it('leaves out what MediaCapabilities says is not smooth, and says why when it binds', () => {
    const p = new SmoothPolicy();
    p.setRungs(LADDER.map((r) => (r.height === 720 ? { ...r, smooth: false } : r)));
    for (let i = 0; i < 5; i++) p.sample(500_000, 100);
    const d = p.decide(obs());
    assert.equal(d?.rung.height, 540);
    assert.equal(d?.reason, 'capped to 540p: device cannot decode 720p smoothly');
  });

  it('audio only: no size or CPU caps, bandwidth alone', () => {
    const p = new SmoothPolicy();
    p.setRungs([
      { id: 0, bandwidth: 64_000, width: null, height: null, smooth: true },
      { id: 1, bandwidth: 128_000, width: null, height: null, smooth: true },
    ]);
    for (let i = 0; i < 5; i++) p.sample(100_000, 100);
    assert.equal(p.decide(obs({ element: { width: 10, height: 10 }, hidden: true }))?.rung.id, 1);
  });
});
