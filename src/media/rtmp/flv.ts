// FLV (Adobe Flash Video File Format Specification 10.1, Annex E) as far as feeding ffmpeg needs: the file header,
// tags with PreviousTagSize, and reading the codec out of VIDEODATA/AUDIODATA bodies — the payloads of RTMP audio
// and video messages are exactly these tag bodies. Enhanced RTMP (Veovera E-RTMP v1/v2) FourCC headers are read
// too, so that an HEVC or AV1 publisher can be recognised and refused cleanly.
import { type Amf0Object, concatBytes, ecmaArray, encodeAmf0, protocolError } from './amf0.ts';

export const FLV_TAG = { audio: 8, video: 9, script: 18 } as const;
export type FlvTagType = (typeof FLV_TAG)[keyof typeof FLV_TAG];

/** The 9-byte FLV header (E.2) followed by PreviousTagSize0 (always 0), so tags can follow directly. */
export function flvHeader(flags: { audio: boolean; video: boolean } = { audio: true, video: true }): Uint8Array {
  return Uint8Array.of(0x46, 0x4c, 0x56, 1, (flags.audio ? 4 : 0) | (flags.video ? 1 : 0), 0, 0, 0, 9, 0, 0, 0, 0);
}

/** One FLV tag (E.4.1: type, DataSize, Timestamp + TimestampExtended, StreamID 0) and its PreviousTagSize. */
export function flvTag(type: FlvTagType, timestamp: number, body: Uint8Array): Uint8Array {
  if (body.length > 0xffffff) throw protocolError(`FLV tag body of ${body.length} bytes does not fit 24 bits`);
  const ts = timestamp >>> 0;
  const head = new Uint8Array(11);
  head[0] = type;
  head.set([(body.length >>> 16) & 0xff, (body.length >>> 8) & 0xff, body.length & 0xff], 1);
  // Timestamp is the low 24 bits, TimestampExtended the high 8 (E.4.1).
  head.set([(ts >>> 16) & 0xff, (ts >>> 8) & 0xff, ts & 0xff, ts >>> 24], 4);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, 11 + body.length);
  return concatBytes([head, body, tail]);
}

export interface FlvTagRecord {
  type: number;
  timestamp: number;
  /** A view into the bytes read, not a copy. */
  body: Uint8Array;
}

/**
 * The tags from `start` to the end of `bytes`, each followed by its PreviousTagSize (E.3) — an FLV file after its
 * header, or the body of an RTMP aggregate message. A tag running past the end is a protocol error.
 */
export function readFlvTags(bytes: Uint8Array, start = 0, what = 'FLV'): FlvTagRecord[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tags: FlvTagRecord[] = [];
  for (let at = start; at < bytes.length; ) {
    if (bytes.length - at < 11) throw protocolError(`${what}: tag header cut short at ${at}`);
    const size = view.getUint32(at) & 0xffffff;
    if (size + 15 > bytes.length - at) throw protocolError(`${what}: tag at ${at} runs past the end`);
    const timestamp = ((view.getUint32(at + 4) >>> 8) | (view.getUint8(at + 7) << 24)) >>> 0;
    tags.push({ type: (bytes[at] as number) & 0x1f, timestamp, body: bytes.subarray(at + 11, at + 11 + size) });
    at += 11 + size + 4;
  }
  return tags;
}

/** A SCRIPTDATA body for onMetaData (E.5), the form ffmpeg's FLV demuxer reads. */
export function metadataBody(data: Amf0Object): Uint8Array {
  return encodeAmf0('onMetaData', ecmaArray(data));
}

export type VideoCodec = 'avc' | 'hevc' | 'av1' | 'vp9' | 'vp8' | 'h263' | 'screen' | 'vp6' | 'vp6a' | 'screen2';
export type AudioCodec =
  | 'pcm'
  | 'adpcm'
  | 'mp3'
  | 'pcm-le'
  | 'nellymoser'
  | 'g711a'
  | 'g711u'
  | 'aac'
  | 'speex'
  | 'opus'
  | 'flac'
  | 'ac3'
  | 'eac3';

export interface VideoTagInfo {
  /** null for a codec id or FourCC this table does not know, or for a command frame. */
  codec: VideoCodec | null;
  /** The legacy CodecID (E.4.3.1), or null for an Enhanced RTMP header. */
  codecId: number | null;
  /** The Enhanced RTMP FourCC ('avc1', 'hvc1', 'av01', 'vp09'), or null for a legacy header. */
  fourcc: string | null;
  frameType: number;
  /** Frame type 1 (key frame) or 4 (generated key frame). */
  keyframe: boolean;
  /** AVCPacketType 0 / E-RTMP SequenceStart: a decoder configuration record, not a picture. */
  sequenceHeader: boolean;
  /** AVCPacketType 2 / E-RTMP SequenceEnd. */
  endOfSequence: boolean;
}

export interface AudioTagInfo {
  codec: AudioCodec | null;
  /** The legacy SoundFormat (E.4.2.1), or 9 for an Enhanced RTMP header. */
  soundFormat: number;
  fourcc: string | null;
  /** AACPacketType 0 / E-RTMP SequenceStart: the AudioSpecificConfig (or the codec's equivalent). */
  sequenceHeader: boolean;
}

const LEGACY_VIDEO: Record<number, VideoCodec> = {
  2: 'h263',
  3: 'screen',
  4: 'vp6',
  5: 'vp6a',
  6: 'screen2',
  7: 'avc',
  // 12 and 13 are the pre-E-RTMP HEVC/AV1 extension some CDNs (and ffmpeg forks) use; not in Adobe's table.
  12: 'hevc',
  13: 'av1',
};
const VIDEO_FOURCC: Record<string, VideoCodec> = { avc1: 'avc', hvc1: 'hevc', av01: 'av1', vp09: 'vp9', vp08: 'vp8' };

const LEGACY_AUDIO: Record<number, AudioCodec> = {
  0: 'pcm',
  1: 'adpcm',
  2: 'mp3',
  3: 'pcm-le',
  4: 'nellymoser',
  5: 'nellymoser',
  6: 'nellymoser',
  7: 'g711a',
  8: 'g711u',
  10: 'aac',
  11: 'speex',
  14: 'mp3',
};
const AUDIO_FOURCC: Record<string, AudioCodec> = {
  Opus: 'opus',
  fLaC: 'flac',
  'ac-3': 'ac3',
  'ec-3': 'eac3',
  '.mp3': 'mp3',
  mp4a: 'aac',
};

/** An own entry of a table, never an inherited property. */
function lookup<C>(table: Record<string | number, C>, key: string | number): C | null {
  return Object.hasOwn(table, key) ? (table[key] as C) : null;
}

function fourccAt(body: Uint8Array, at: number, what: string): string {
  if (body.length < at + 4) throw protocolError(`${what}: Enhanced RTMP header cut short (${body.length} bytes)`);
  return String.fromCharCode(...body.subarray(at, at + 4));
}

/** E-RTMP v2 ModEx (packet type 7): skips the modifier extensions and returns [packet type, next offset]. */
function skipModEx(body: Uint8Array, at: number, packetType: number, what: string): [number, number] {
  let p = at;
  let type = packetType;
  for (let guard = 0; type === 7; guard++) {
    if (guard > 8) throw protocolError(`${what}: too many ModEx headers`);
    let size = (body[p] ?? 0) + 1;
    p += 1;
    if (size === 256) {
      size = (((body[p] ?? 0) << 8) | (body[p + 1] ?? 0)) + 1;
      p += 2;
    }
    p += size;
    if (p >= body.length) throw protocolError(`${what}: ModEx header cut short`);
    type = (body[p] as number) & 0x0f;
    p += 1;
  }
  return [type, p];
}

/** Reads the VIDEODATA header (E.4.3.1) or the E-RTMP ExVideoTagHeader of an RTMP video message payload. */
export function videoCodec(body: Uint8Array): VideoTagInfo {
  const b0 = body[0];
  if (b0 === undefined) throw protocolError('video message is empty');
  if (b0 & 0x80) {
    // E-RTMP: IsExHeader(1) FrameType(3) PacketType(4).
    const frameType = (b0 >> 4) & 0x07;
    const [packetType, at] = skipModEx(body, 1, b0 & 0x0f, 'video');
    const base = { codecId: null, frameType, keyframe: frameType === 1 || frameType === 4 };
    // A command frame (frame type 5) carries one command byte instead of a FourCC (E-RTMP v2), except Metadata.
    if (frameType === 5 && packetType !== 4) {
      return { ...base, codec: null, fourcc: null, sequenceHeader: false, endOfSequence: false };
    }
    // Multitrack (6): AvMultitrackType(4) + the tracks' PacketType(4), then the (first) track's FourCC.
    const multitrack = packetType === 6;
    const type = multitrack ? (body[at] ?? 0) & 0x0f : packetType;
    const fourcc = fourccAt(body, multitrack ? at + 1 : at, 'video');
    return {
      ...base,
      codec: lookup(VIDEO_FOURCC, fourcc),
      fourcc,
      sequenceHeader: type === 0 || type === 5,
      endOfSequence: type === 2,
    };
  }
  const frameType = b0 >> 4;
  const codecId = b0 & 0x0f;
  const codec = lookup(LEGACY_VIDEO, codecId);
  // AVC (and its HEVC/AV1 look-alikes) follow with AVCPacketType(8) + CompositionTime(24) (E.4.3.1).
  const hasPacketType = codecId === 7 || codecId === 12 || codecId === 13;
  if (hasPacketType && body.length < 5) throw protocolError(`AVC video message of ${body.length} bytes is too short`);
  const packetType = hasPacketType ? body[1] : undefined;
  return {
    codec,
    codecId,
    fourcc: null,
    frameType,
    keyframe: frameType === 1 || frameType === 4,
    sequenceHeader: packetType === 0,
    endOfSequence: packetType === 2,
  };
}

/** Reads the AUDIODATA header (E.4.2.1) or the E-RTMP ExAudioTagHeader of an RTMP audio message payload. */
export function audioCodec(body: Uint8Array): AudioTagInfo {
  const b0 = body[0];
  if (b0 === undefined) throw protocolError('audio message is empty');
  const soundFormat = b0 >> 4;
  if (soundFormat === 9) {
    // E-RTMP v2: SoundFormat 9 = ExHeader, then AudioPacketType(4) and a FourCC.
    const [packetType, at] = skipModEx(body, 1, b0 & 0x0f, 'audio');
    const multitrack = packetType === 5;
    const type = multitrack ? (body[at] ?? 0) & 0x0f : packetType;
    const fourcc = fourccAt(body, multitrack ? at + 1 : at, 'audio');
    return { codec: lookup(AUDIO_FOURCC, fourcc), soundFormat, fourcc, sequenceHeader: type === 0 };
  }
  if (soundFormat === 10 && body.length < 2) throw protocolError('AAC audio message has no AACPacketType');
  return {
    codec: lookup(LEGACY_AUDIO, soundFormat),
    soundFormat,
    fourcc: null,
    sequenceHeader: soundFormat === 10 && body[1] === 0,
  };
}

function fourccOfNumber(n: number): string {
  return String.fromCharCode((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/**
 * The codecs onMetaData announces (`videocodecid`/`audiocodecid`: a legacy id, or under E-RTMP the FourCC as a
 * number or string), which arrive before any media; null when absent or unknown.
 */
export function metadataCodecs(data: Amf0Object): { video: VideoCodec | null; audio: AudioCodec | null } {
  const pick = <C>(v: unknown, legacy: Record<number, C>, fourccs: Record<string, C>): C | null => {
    if (typeof v === 'string') return lookup(fourccs, v);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) return null;
    return v < 256 ? lookup(legacy, v) : lookup(fourccs, fourccOfNumber(v));
  };
  return {
    video: pick(data.videocodecid, LEGACY_VIDEO, VIDEO_FOURCC),
    audio: pick(data.audiocodecid, LEGACY_AUDIO, AUDIO_FOURCC),
  };
}
