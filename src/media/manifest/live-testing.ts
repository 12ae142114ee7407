// For the live manifest tests (not used by production code): a small strict XML reader, and dash.js's own MPD and
// Smooth readers run in Node. dash.js ships only webpack bundles; its internal modules are reached through the
// bundle's module table, with a stand-in `window` (performance, and for MssParser a DOMParser over dash.js's own
// bundled XML parser), so nothing global is touched.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LiveTimeline } from '../live/parts.ts';
import type { Segment } from '../types.ts';

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_][\w.:-]*/;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/**
 * XML 1.0 well-formedness, strictly, for what our writers emit: an optional declaration, one root element, balanced
 * tags, quoted unique attributes, no raw `<` or stray `&`. Throws on the first fault; returns the element tree.
 */
export function parseXml(text: string): XmlElement {
  let pos = 0;
  const fail = (why: string): never => {
    throw new Error(`not well-formed at ${pos}: ${why}`);
  };
  const decode = (s: string) =>
    s.replace(/&([^;]*);?/g, (m, ref: string) => {
      if (!m.endsWith(';')) fail(`stray & in ${JSON.stringify(s)}`);
      const n = /^#x([0-9a-fA-F]+)$/.exec(ref) ?? /^#([0-9]+)$/.exec(ref);
      if (n) return String.fromCodePoint(Number.parseInt(n[1]!, ref[1] === 'x' ? 16 : 10));
      return ENTITIES[ref] ?? fail(`unknown entity &${ref};`);
    });
  const skipSpace = () => {
    while (/\s/.test(text[pos] ?? '')) pos++;
  };
  const element = (): XmlElement => {
    if (text[pos] !== '<') fail('expected <');
    pos++;
    const name = NAME.exec(text.slice(pos))?.[0] ?? fail('bad element name');
    pos += name.length;
    const el: XmlElement = { name, attrs: {}, children: [], text: '' };
    for (;;) {
      const before = pos;
      skipSpace();
      if (text.startsWith('/>', pos)) {
        pos += 2;
        return el;
      }
      if (text[pos] === '>') break;
      if (pos === before) fail('attributes need white space between them');
      const attr = NAME.exec(text.slice(pos))?.[0] ?? fail('bad attribute name');
      pos += attr.length;
      skipSpace();
      if (text[pos] !== '=') fail(`attribute ${attr} without =`);
      pos++;
      skipSpace();
      const q = text[pos];
      if (q !== '"' && q !== "'") fail(`attribute ${attr} not quoted`);
      const close = text.indexOf(q!, pos + 1);
      if (close < 0) fail('unterminated attribute value');
      const raw = text.slice(pos + 1, close);
      if (raw.includes('<')) fail(`< in attribute ${attr}`);
      if (Object.hasOwn(el.attrs, attr)) fail(`attribute ${attr} given twice`);
      el.attrs[attr] = decode(raw);
      pos = close + 1;
    }
    pos++;
    for (;;) {
      const next = text.indexOf('<', pos);
      if (next < 0) fail(`${name} is not closed`);
      el.text += decode(text.slice(pos, next));
      pos = next;
      if (text.startsWith('</', pos)) {
        pos += 2;
        if (!text.startsWith(name, pos)) fail(`</${name}> expected`);
        pos += name.length;
        skipSpace();
        if (text[pos] !== '>') fail(`</${name}> expected`);
        pos++;
        return el;
      }
      el.children.push(element());
    }
  };
  if (text.startsWith('<?xml')) {
    const close = text.indexOf('?>');
    if (close < 0) fail('unterminated declaration');
    pos = close + 2;
  }
  skipSpace();
  const root = element();
  skipSpace();
  if (pos !== text.length) fail('content after the root element');
  return root;
}

/** Every descendant element (and the element itself) with this name, in document order. */
export function elements(el: XmlElement, name: string): XmlElement[] {
  return [...(el.name === name ? [el] : []), ...el.children.flatMap((c) => elements(c, name))];
}

/**
 * The segments a SegmentTimeline describes (§5.3.9.6): each S once plus r repeats, t carried on from the last end;
 * `explicit` on the first segment of an S that has its own t.
 */
export function expandTimeline(timeline: XmlElement): { t: number; d: number; explicit: boolean }[] {
  const out: { t: number; d: number; explicit: boolean }[] = [];
  let t = 0;
  for (const s of timeline.children) {
    if (s.name !== 'S') throw new Error(`${s.name} in a SegmentTimeline`);
    if (s.attrs.t !== undefined) t = Number(s.attrs.t);
    const d = Number(s.attrs.d);
    for (let i = 0; i <= Number(s.attrs.r ?? 0); i++) {
      out.push({ t, d, explicit: i === 0 && s.attrs.t !== undefined });
      t += d;
    }
  }
  return out;
}

export const VIDEO_TS = 15360;
export const AUDIO_TS = 48000;

export interface RandomEvent {
  video: LiveTimeline;
  audio: LiveTimeline;
  /** Wall clock of media time 0. */
  ingestStartMs: number;
}

/**
 * Grows a video timeline by `gops` random GOPs (1–7 parts of 512–6000 ticks, the first a keyframe; now and then a
 * tfdt gap, or a discontinuity marked on an unbroken tfdt) and an audio timeline cut on its boundaries that keeps up
 * with it (parts of 4–20 AAC frames, jumping where the video does), calling `check` after each GOP.
 */
export function growRandomEvent(rand: () => number, gops: number, check: (e: RandomEvent) => void): RandomEvent {
  const video = new LiveTimeline({ timescale: VIDEO_TS });
  const audio = new LiveTimeline({ timescale: AUDIO_TS, boundaries: video });
  const e = { video, audio, ingestStartMs: Date.UTC(2025, 0, 2, 12) };
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  let vt = 0;
  let at = 0;
  let vo = 800;
  let ao = 800;
  for (let g = 0; g < gops; g++) {
    const roll = rand();
    if (g > 0 && roll < 0.08) vt += int(1, 200_000);
    else if (g > 0 && roll < 0.13) {
      video.markDiscontinuity();
      audio.markDiscontinuity();
    }
    if (Math.round((vt / VIDEO_TS) * AUDIO_TS) > at + 4096) at = Math.round((vt / VIDEO_TS) * AUDIO_TS);
    const parts: Segment[] = [];
    for (let p = int(1, 7); p > 0; p--) {
      const duration = int(512, 6000);
      parts.push(part(vt, duration, vo, 1000, parts.length === 0));
      vt += duration;
      vo += 1000;
    }
    video.append(parts);
    const audioParts: Segment[] = [];
    while (at / AUDIO_TS < vt / VIDEO_TS) {
      const duration = 1024 * int(4, 20);
      audioParts.push(part(at, duration, ao, 500, true));
      at += duration;
      ao += 500;
    }
    audio.append(audioParts);
    check(e);
  }
  return e;
}

function part(start: number, duration: number, offset: number, size: number, key: boolean): Segment {
  return { start, duration, offset, size, samples: 1, startsWithKeyframe: key, presentationStart: start };
}

type Require = (id: string) => Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: dash.js's internals are untyped JavaScript.
type Js = any;

const dashDir = join(import.meta.dirname, '../../../node_modules/dashjs/dist/modern/esm');

/** A webpack bundle's module loader, without running its entry point (which needs a browser). */
function loadBundle(file: string, window: object): Require {
  const src = readFileSync(join(dashDir, file), 'utf8');
  const cut = src.indexOf('var __webpack_exports__ = {};');
  if (cut < 0) throw new Error(`${file}: not the webpack layout expected`);
  return new Function('window', `${src.slice(0, cut)}\nreturn __webpack_require__;`)(window) as Require;
}

let all: Require | undefined;
let mss: Require | undefined;
const fakeWindow: Record<string, unknown> = { performance };

function dashAll(): Require {
  all ??= loadBundle('dash.all.debug.js', fakeWindow);
  return all;
}

const factory = (req: Require, path: string): Js => req(path).default;

export interface DashJsSegment {
  media: string;
  /** Presentation start and duration, seconds. */
  start: number;
  duration: number;
  /** When dash.js reckons the segment becomes available (ms since the epoch). */
  availableAt: number;
}

export interface DashJsRepresentation {
  id: string;
  contentType: string;
  startNumber: number;
  timescale: number;
  segments: DashJsSegment[];
}

export interface DashJsMpd {
  dynamic: boolean;
  /** Seconds, as dash.js holds them. */
  timeShiftBufferDepth: number;
  availabilityStartTime: Date;
  publishTime: Date | undefined;
  manifest: Js;
  serviceDescriptions: Js[];
  utcTimings: { schemeIdUri: string; value: string }[];
  representations: DashJsRepresentation[];
}

/**
 * The MPD as dash.js reads it (DashParser, DashManifestModel), and every segment its TimelineSegmentsGetter hands out
 * with the client clock set to `nowMs`: a segment dash.js thinks unavailable then is missing from the list.
 */
export function dashJsReadMpd(text: string, nowMs: number): DashJsMpd {
  const req = dashAll();
  const context = {};
  const settings = factory(req, './src/core/Settings.js')(context).getInstance();
  const debug = factory(req, './src/core/Debug.js')(context).getInstance({ settings });
  const manifest = factory(req, './src/dash/parser/DashParser.js')(context).create({ debug }).parse(text);
  const model = factory(req, './src/dash/models/DashManifestModel.js')(context).getInstance();
  const errors: unknown[] = [];
  model.setConfig({ errHandler: { error: (e: unknown) => errors.push(e) } });
  const converter = factory(req, './src/dash/utils/TimelineConverter.js')(context).getInstance();
  converter.initialize();
  converter.setClientTimeOffset((nowMs - Date.now()) / 1000);
  const mpd = model.getMpd(manifest);
  const dynamic: boolean = model.getIsDynamic(manifest);
  const getter = factory(
    req,
    './src/dash/utils/TimelineSegmentsGetter.js',
  )(context).create({ timelineConverter: converter }, dynamic);
  const representations: DashJsRepresentation[] = [];
  for (const period of model.getRegularPeriods(mpd)) {
    for (const adaptation of model.getAdaptationsForPeriod(period)) {
      for (const rep of model.getRepresentationsForAdaptation(adaptation)) {
        if (rep.segmentInfoType !== 'SegmentTimeline') continue;
        const real = manifest.Period[period.index].AdaptationSet[adaptation.index].Representation[rep.index];
        const starts = (real.SegmentTemplate.SegmentTimeline.S as { t?: number }[])
          .filter((s) => s.t !== undefined)
          .map((s) => s.t! / rep.timescale);
        const segments: DashJsSegment[] = [];
        // As a player walks it: the next segment after the last one, or across a gap the next explicit S@t.
        let s: Js = getter.getSegmentByTime(rep, starts[0]);
        while (s) {
          segments.push({
            media: s.media,
            start: s.presentationStartTime,
            duration: s.duration,
            availableAt: s.availabilityStartTime.getTime(),
          });
          const last = s;
          s = getter.getSegmentByIndex(rep, last);
          const after = starts.find((t) => t > last.presentationStartTime + last.duration / 2);
          if (!s && after !== undefined) s = getter.getSegmentByTime(rep, after);
        }
        representations.push({
          id: rep.id,
          contentType: adaptation.type,
          startNumber: rep.startNumber,
          timescale: rep.timescale,
          segments,
        });
      }
    }
  }
  if (errors.length > 0) throw new Error(`dash.js reported ${JSON.stringify(errors)}`);
  return {
    dynamic,
    timeShiftBufferDepth: mpd.timeShiftBufferDepth,
    availabilityStartTime: mpd.availabilityStartTime,
    publishTime: model.getPublishTime(manifest) ?? undefined,
    manifest,
    serviceDescriptions: model.getServiceDescriptions(manifest),
    utcTimings: model.getUTCTimingSources(manifest),
    representations,
  };
}

/** A DOM element over a node of dash.js's bundled XML parser (@svta/cml-xml), with what MssParser calls. */
class ShimElement {
  readonly #node: Js;
  constructor(node: Js) {
    this.#node = node;
  }
  get nodeName(): string {
    return this.#node.nodeName;
  }
  get data(): string {
    return this.#node.nodeValue ?? '';
  }
  get firstChild(): ShimElement | null {
    const c = this.#node.childNodes?.[0];
    return c ? new ShimElement(c) : null;
  }
  get textContent(): string {
    return (
      this.#node.nodeValue ?? (this.#node.childNodes ?? []).map((c: Js) => new ShimElement(c).textContent).join('')
    );
  }
  getAttribute(name: string): string | null {
    return Object.hasOwn(this.#node.attributes ?? {}, name) ? this.#node.attributes[name] : null;
  }
  setAttribute(name: string, value: string): void {
    this.#node.attributes[name] = value;
  }
  getElementsByTagName(name: string): ShimElement[] {
    const found: ShimElement[] = [];
    const walk = (n: Js) => {
      for (const c of n.childNodes ?? []) {
        if (c.nodeName === name) found.push(new ShimElement(c));
        walk(c);
      }
    };
    walk(this.#node);
    return found;
  }
  querySelector(): null {
    return null;
  }
}

/** The Smooth manifest as dash.js's MssParser turns it into its DASH model (type, DVR depth, SegmentTimelines). */
export function dashJsReadSmooth(text: string): Js {
  const req = dashAll();
  const xml = req('./node_modules/@svta/cml-xml/dist/index.js') as { parseXml(s: string): Js };
  fakeWindow.DOMParser = class {
    parseFromString(s: string) {
      return new ShimElement(xml.parseXml(s));
    }
  };
  mss ??= loadBundle('dash.mss.debug.js', fakeWindow);
  const context = {};
  const settings = factory(req, './src/core/Settings.js')(context).getInstance();
  const debug = factory(req, './src/core/Debug.js')(context).getInstance({ settings });
  const parser = factory(
    mss,
    './src/mss/parser/MssParser.js',
  )(context).create({
    debug,
    settings,
    constants: factory(req, './src/streaming/constants/Constants.js'),
    manifestModel: { getValue: () => null },
  });
  return parser.parse(text);
}
