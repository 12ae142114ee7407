// Builders of small ISO-BMFF files for the tests beside this file (ISO/IEC 14496-12 box layouts); not used in
// production code.

export type Part = Uint8Array | readonly number[];

export function concat(...parts: Part[]): Uint8Array {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

export function u16(n: number): number[] {
  return [(n >>> 8) & 0xff, n & 0xff];
}

export function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

export function u64(n: number): number[] {
  return [...u32(Math.floor(n / 2 ** 32)), ...u32(n % 2 ** 32)];
}

export function ascii(s: string): number[] {
  return Array.from(s, (c) => c.charCodeAt(0));
}

export function box(type: string, ...parts: Part[]): Uint8Array {
  const body = concat(...parts);
  return concat(u32(8 + body.length), ascii(type), body);
}

/** The same box with a 64-bit largesize (size field 1). */
export function largeBox(type: string, ...parts: Part[]): Uint8Array {
  const body = concat(...parts);
  return concat(u32(1), ascii(type), u64(16 + body.length), body);
}

export function fullBox(type: string, version: number, flags: number, ...parts: Part[]): Uint8Array {
  return box(type, [version, (flags >>> 16) & 0xff, (flags >>> 8) & 0xff, flags & 0xff], ...parts);
}

/** AVCDecoderConfigurationRecord without parameter sets (ISO/IEC 14496-15 §5.3.3.1). */
export function avcC(profile: number, compatibility: number, level: number): Uint8Array {
  return Uint8Array.from([1, profile, compatibility, level, 0xff, 0xe0, 0x00]);
}

/** esds payload (version, flags, ES_Descriptor) with one-byte descriptor sizes (ISO/IEC 14496-1 §7.2.6). */
export function esdsPayload(objectTypeIndication: number, dsi: readonly number[]): Uint8Array {
  const dsiDesc = dsi.length ? [0x05, dsi.length, ...dsi] : [];
  const dc = [0x04, 13 + dsiDesc.length, objectTypeIndication, 0x15, 0, 0, 0, ...u32(0), ...u32(0), ...dsiDesc];
  const es = [0x03, 3 + dc.length + 3, ...u16(1), 0, ...dc, 0x06, 1, 2];
  return Uint8Array.from([0, 0, 0, 0, ...es]);
}

export interface InitOptions {
  kind?: 'video' | 'audio';
  timescale?: number;
  trackId?: number;
  trex?: { duration?: number; size?: number; flags?: number };
  /** Extra boxes inside moov, e.g. a second trak. */
  extra?: Uint8Array[];
  mvex?: boolean;
  /** Replaces the sample entry inside stsd. */
  entry?: Uint8Array;
}

export function visualEntry(type: string, config: Uint8Array, configType = 'avcC'): Uint8Array {
  const fields = [...Array(6).fill(0), ...u16(1), ...Array(16).fill(0), ...u16(640), ...u16(360)];
  const rest = [...u32(0x480000), ...u32(0x480000), ...u32(0), ...u16(1), ...Array(32).fill(0), ...u16(24), 0xff, 0xff];
  return box(
    type,
    fields,
    rest,
    box(configType, config),
    box('pasp', u32(1), u32(1)),
    box('btrt', u32(0), u32(0), u32(0)),
  );
}

function audioEntry(): Uint8Array {
  const fields = [
    ...Array(6).fill(0),
    ...u16(1),
    ...Array(8).fill(0),
    ...u16(2),
    ...u16(16),
    ...u32(0),
    ...u32(44100 << 16),
  ];
  // AudioSpecificConfig: AAC-LC (2), 48 kHz (index 3), stereo (2) — differs from the sample entry on purpose.
  return box('mp4a', fields, box('esds', esdsPayload(0x40, [0x11, 0x90])));
}

export function trak(o: InitOptions = {}): Uint8Array {
  const kind = o.kind ?? 'video';
  const entry = o.entry ?? (kind === 'video' ? visualEntry('avc1', avcC(0x64, 0, 0x1f)) : audioEntry());
  const stbl = box('stbl', fullBox('stsd', 0, 0, u32(1), entry), fullBox('stts', 0, 0, u32(0)));
  const tkhd = fullBox('tkhd', 0, 3, u32(0), u32(0), u32(o.trackId ?? 1), Array(72).fill(0));
  const mdhd = fullBox('mdhd', 0, 0, u32(0), u32(0), u32(o.timescale ?? 90000), u32(0), u32(0));
  const hdlr = fullBox('hdlr', 0, 0, u32(0), ascii(kind === 'video' ? 'vide' : 'soun'), Array(12).fill(0), [0]);
  return box('trak', tkhd, box('mdia', mdhd, hdlr, box('minf', box('dinf'), stbl)));
}

export function init(o: InitOptions = {}): Uint8Array {
  const t = o.trex ?? {};
  const trex = fullBox(
    'trex',
    0,
    0,
    u32(o.trackId ?? 1),
    u32(1),
    u32(t.duration ?? 0),
    u32(t.size ?? 0),
    u32(t.flags ?? 0),
  );
  const mvhd = fullBox('mvhd', 0, 0, Array(96).fill(0));
  const moov = box('moov', mvhd, trak(o), ...(o.extra ?? []), ...(o.mvex === false ? [] : [box('mvex', trex)]));
  return concat(box('ftyp', ascii('iso6'), u32(0), ascii('iso6cmfc')), moov);
}

export interface SampleSpec {
  duration?: number;
  size: number;
  flags?: number;
  cto?: number;
}

export interface FragmentOptions {
  sequence?: number;
  /** undefined leaves the tfdt out. */
  tfdt: number | undefined;
  trackId?: number;
  samples: SampleSpec[];
  trunVersion?: 0 | 1;
  firstSampleFlags?: number;
  tfhd?: { duration?: number; size?: number; flags?: number };
  /** 'large': mdat with largesize; 'zero': mdat with size 0 (to end of file). */
  mdat?: 'normal' | 'large' | 'zero';
}

/** moof + mdat with a data_offset relative to the moof (default-base-is-moof), as ffmpeg writes them. */
export function fragment(o: FragmentOptions): Uint8Array {
  const has = (k: keyof SampleSpec) => o.samples.some((s) => s[k] !== undefined);
  let flags = 0x000001 | (o.firstSampleFlags !== undefined ? 0x04 : 0) | 0x200;
  if (has('duration')) flags |= 0x100;
  if (has('flags')) flags |= 0x400;
  if (has('cto')) flags |= 0x800;
  const entries = o.samples.flatMap((s) => [
    ...(flags & 0x100 ? u32(s.duration ?? 0) : []),
    ...u32(s.size),
    ...(flags & 0x400 ? u32(s.flags ?? 0) : []),
    ...(flags & 0x800 ? u32(s.cto ?? 0) : []),
  ]);
  const th = o.tfhd ?? {};
  const tfhdFlags =
    0x020000 |
    (th.duration !== undefined ? 0x08 : 0) |
    (th.size !== undefined ? 0x10 : 0) |
    (th.flags !== undefined ? 0x20 : 0);
  const tfhd = fullBox(
    'tfhd',
    0,
    tfhdFlags,
    u32(o.trackId ?? 1),
    th.duration !== undefined ? u32(th.duration) : [],
    th.size !== undefined ? u32(th.size) : [],
    th.flags !== undefined ? u32(th.flags) : [],
  );
  const tfdt = o.tfdt === undefined ? new Uint8Array(0) : fullBox('tfdt', 1, 0, u64(o.tfdt));
  const build = (dataOffset: number) =>
    box(
      'moof',
      fullBox('mfhd', 0, 0, u32(o.sequence ?? 1)),
      box(
        'traf',
        tfhd,
        tfdt,
        fullBox(
          'trun',
          o.trunVersion ?? 0,
          flags,
          u32(o.samples.length),
          u32(dataOffset),
          o.firstSampleFlags !== undefined ? u32(o.firstSampleFlags) : [],
          entries,
        ),
      ),
    );
  const payload = new Uint8Array(o.samples.reduce((n, s) => n + s.size, 0)).fill(0xab);
  const mdatHeader = o.mdat === 'large' ? 16 : 8;
  const moof = build(build(0).length + mdatHeader);
  const mdat =
    o.mdat === 'large'
      ? largeBox('mdat', payload)
      : o.mdat === 'zero'
        ? concat(u32(0), ascii('mdat'), payload)
        : box('mdat', payload);
  return concat(moof, mdat);
}

/** mulberry32: a small seeded PRNG so that every run sees the same steps. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
