// MPEG-4 audio configuration: the esds box (ISO/IEC 14496-14, descriptors of ISO/IEC 14496-1 §7.2.6), the
// AudioSpecificConfig it carries (ISO/IEC 14496-3 §1.6.2.1) and the RFC 6381 §3.3 'mp4a' codec string.
import { malformed, Reader } from './reader.ts';

const ES_DescrTag = 0x03;
const DecoderConfigDescrTag = 0x04;
const DecSpecificInfoTag = 0x05;

export interface DecoderConfig {
  objectTypeIndication: number;
  /** DecoderSpecificInfo bytes (for AAC the AudioSpecificConfig); empty when absent. */
  decoderSpecificInfo: Uint8Array;
}

/** Descriptor header (14496-1 §8.3.3): tag, then a size in 1–4 bytes of 7 bits each. */
function descriptor(r: Reader): { tag: number; end: number } {
  const tag = r.u8();
  let size = 0;
  for (let i = 0; ; i++) {
    if (i === 4) throw malformed('esds: descriptor size longer than 4 bytes');
    const b = r.u8();
    size = size * 128 + (b & 0x7f);
    if (!(b & 0x80)) break;
  }
  r.need(size);
  return { tag, end: r.pos + size };
}

/** The body of the first descriptor with `tag` among those left in r, as a reader bounded to that body. */
function find(r: Reader, tag: number, what: string): Reader | undefined {
  while (r.remaining > 0) {
    const d = descriptor(r);
    const body = r.pos;
    r.pos = d.end;
    if (d.tag === tag) return new Reader(r.bytes, what, body, d.end);
  }
  return undefined;
}

/** Parses an esds payload (the bytes after the box header: version, flags, ES_Descriptor). */
export function parseEsds(esds: Uint8Array): DecoderConfig {
  const box = new Reader(esds, 'esds');
  box.fullBox();
  const es = find(box, ES_DescrTag, 'ES_Descriptor');
  if (!es) throw malformed('esds has no ES_Descriptor');
  es.skip(2); // ES_ID
  const flags = es.u8();
  if (flags & 0x80) es.skip(2); // dependsOn_ES_ID
  if (flags & 0x40) es.skip(es.u8()); // URLstring
  if (flags & 0x20) es.skip(2); // OCR_ES_Id
  const dc = find(es, DecoderConfigDescrTag, 'DecoderConfigDescriptor');
  if (!dc) throw malformed('esds has no DecoderConfigDescriptor');
  const objectTypeIndication = dc.u8();
  dc.skip(1 + 3 + 4 + 4); // streamType/upStream/reserved, bufferSizeDB, maxBitrate, avgBitrate
  const dsi = find(dc, DecSpecificInfoTag, 'DecoderSpecificInfo');
  const decoderSpecificInfo = dsi ? esds.slice(dsi.pos, dsi.end) : new Uint8Array(0);
  return { objectTypeIndication, decoderSpecificInfo };
}

class BitReader {
  private readonly bytes: Uint8Array;
  private bit = 0;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  read(n: number): number {
    if (this.bit + n > this.bytes.length * 8) throw malformed('AudioSpecificConfig is truncated');
    let v = 0;
    for (let i = 0; i < n; i++, this.bit++) {
      v = v * 2 + (((this.bytes[this.bit >> 3] ?? 0) >> (7 - (this.bit & 7))) & 1);
    }
    return v;
  }
}

// 14496-3 Table 1.18 (samplingFrequencyIndex) and Table 1.19 (channelConfiguration → channels).
const FREQUENCIES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
const CHANNELS = [0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8, 0];

export interface AudioSpecificConfig {
  /** The first audioObjectType (5 or 29 for explicitly signalled HE-AAC); this is what RFC 6381 puts in 'mp4a.40.N'. */
  audioObjectType: number;
  /** Output sampling rate (the SBR extension rate for HE-AAC); undefined for a reserved index. */
  sampleRate: number | undefined;
  /** undefined when channelConfiguration is 0 (program_config_element) or reserved. */
  channels: number | undefined;
}

function audioObjectType(b: BitReader): number {
  const aot = b.read(5);
  return aot === 31 ? 32 + b.read(6) : aot;
}

function frequency(b: BitReader): number | undefined {
  const index = b.read(4);
  return index === 0xf ? b.read(24) : FREQUENCIES[index];
}

/** 14496-3 §1.6.2.1 AudioSpecificConfig, as far as the sampling rate and channel count. */
export function parseAudioSpecificConfig(asc: Uint8Array): AudioSpecificConfig {
  const b = new BitReader(asc);
  const aot = audioObjectType(b);
  let sampleRate = frequency(b);
  const channelConfiguration = b.read(4);
  let channels = CHANNELS[channelConfiguration] || undefined;
  if (aot === 5 || aot === 29) {
    // Explicit hierarchical SBR signalling: output rate is the extension rate; PS turns mono into stereo.
    sampleRate = frequency(b);
    if (aot === 29 && channels === 1) channels = 2;
  }
  return { audioObjectType: aot, sampleRate, channels };
}

/**
 * RFC 6381 §3.3: 'mp4a.' + objectTypeIndication in lower-case hex, and for 0x40 (MPEG-4 Audio) '.' + the
 * audioObjectType in decimal. Takes the esds payload (after the box header).
 */
export function codecStringMp4a(esds: Uint8Array): string {
  return codecStringFromConfig(parseEsds(esds));
}

export function codecStringFromConfig(c: DecoderConfig): string {
  const oti = c.objectTypeIndication.toString(16).padStart(2, '0');
  if (c.objectTypeIndication !== 0x40) return `mp4a.${oti}`;
  if (c.decoderSpecificInfo.length === 0) throw malformed('MPEG-4 Audio esds has no AudioSpecificConfig');
  return `mp4a.${oti}.${parseAudioSpecificConfig(c.decoderSpecificInfo).audioObjectType}`;
}
