// Plain value types shared by the pure media code (src/media) and the roles that use it.
// Nothing here touches the network, the disk or the clock.

export type TrackKind = 'video' | 'audio';

/** What the moov of one single-track CMAF file tells about its track (ISO/IEC 14496-12 §8.3–8.5, 14496-15). */
export interface TrackInfo {
  trackId: number;
  kind: TrackKind;
  /** mdhd timescale: units per second of every time value in this track's index. */
  timescale: number;
  /** Sample entry four-character code from stsd: 'avc1', 'avc3', 'hvc1', 'hev1', 'mp4a', … */
  sampleEntry: string;
  /** RFC 6381 codec string, e.g. 'avc1.64001F', 'mp4a.40.2'. */
  codec: string;
  /** Video: coded width/height from the visual sample entry. */
  width?: number;
  height?: number;
  /** Audio: from the audio sample entry / AudioSpecificConfig. */
  sampleRate?: number;
  channels?: number;
  /**
   * Codec configuration bytes: the AVCDecoderConfigurationRecord (avcC payload), HEVCDecoderConfigurationRecord
   * (hvcC payload), or the AAC AudioSpecificConfig (from esds DecoderSpecificInfo). Smooth Streaming's
   * CodecPrivateData is built from these.
   */
  codecConfig: Uint8Array;
  /** trex defaults (ISO/IEC 14496-12 §8.8.3), used when tfhd/trun leave a field out. */
  defaultSampleDuration: number;
  defaultSampleSize: number;
  defaultSampleFlags: number;
  /** Byte size of ftyp+moov (the initialization segment is bytes [0, initSize) of the file). */
  initSize: number;
}

/** One movie fragment (moof+mdat) = one media segment (ISO/IEC 14496-12 §8.8.4; CMAF §7.3.2.3 "CMAF chunk"). */
export interface Segment {
  /** tfdt baseMediaDecodeTime, in the track timescale. */
  start: number;
  /** Sum of the fragment's sample durations, in the track timescale. */
  duration: number;
  /** Byte offset of the moof (or of a styp/prft/emsg that directly precedes it) in the file. */
  offset: number;
  /** Bytes from offset to the end of the mdat. */
  size: number;
  /** Number of samples in the fragment. */
  samples: number;
  /** True when the first sample is a sync sample (sample_is_non_sync_sample == 0). */
  startsWithKeyframe: boolean;
  /** Earliest presentation time (decode time + composition offset of the first sample), track timescale. */
  presentationStart: number;
}

/** Derived per-rendition figures (see summarizeIndex). Bitrates in bits per second. */
export interface IndexSummary {
  duration: number; // seconds
  averageBitrate: number;
  peakBitrate: number;
  /** Video only: samples per second over the whole index; undefined for audio. */
  frameRate?: number;
  segmentCount: number;
  maxSegmentDuration: number; // seconds
}

/** A rendition as the manifest writers need it. */
export interface ManifestRendition {
  /** URL-safe id: 'v0', 'v1', …, 'a0'. */
  id: string;
  track: TrackInfo;
  segments: readonly Segment[];
  /** bits/s: peak over segments (HLS BANDWIDTH, DASH bandwidth), average (HLS AVERAGE-BANDWIDTH). */
  peakBitrate: number;
  averageBitrate: number;
  /** Video: frames per second (may be fractional: 29.97). */
  frameRate?: number;
  /** Video: display size (what the viewer sees; equals coded size for our square-pixel output). */
  width?: number;
  height?: number;
  /** Audio: BCP 47 language ('und' when unknown), a human label, DASH roles (ISO/IEC 23009-1 §5.8.5.5: 'main',
   * 'alternate', 'commentary', 'description', …) and whether it is the one a player should pick by default. */
  language?: string;
  label?: string;
  roles?: readonly string[];
  default?: boolean;
}

/** A WebVTT text track (subtitles or captions) of a presentation. */
export interface TextRendition {
  /** URL-safe id: 'c' + 12 base32 characters. */
  id: string;
  /** BCP 47. */
  language: string;
  label: string;
  /** 'captions' also transcribe non-speech sound (for viewers who are deaf or hard of hearing). */
  kind: 'subtitles' | 'captions';
  default: boolean;
  forced: boolean;
}

export interface Presentation {
  /** True when the encode has finished: every segment is known (HLS VOD + ENDLIST, static DASH). */
  complete: boolean;
  renditions: readonly ManifestRendition[];
  /** Total duration in seconds (of the longest rendition) when complete. */
  duration: number;
  /** Text tracks (complete presentations only). */
  text?: readonly TextRendition[];
}

/**
 * Every URL a manifest contains comes from here, relative to the manifest that holds it, so that path layout and
 * (later) signed query tokens live in one place.
 */
export interface UrlScheme {
  /** From the multivariant playlist to a media playlist. */
  mediaPlaylist(r: ManifestRendition): string;
  /** From a media playlist to the init segment / segment n (0-based). */
  hlsInit(r: ManifestRendition): string;
  hlsSegment(r: ManifestRendition, n: number): string;
  /** DASH SegmentTemplate attributes, relative to the MPD; may use $RepresentationID$ and $Number$. */
  dashInitTemplate: string;
  dashMediaTemplate: string;
  /** From the multivariant playlist to a text track's media playlist; from that playlist to its segment n. */
  textPlaylist?(t: TextRendition): string;
  textSegment?(t: TextRendition, n: number): string;
  /** From the MPD to a text track's whole WebVTT file. */
  textFile?(t: TextRendition): string;
}
