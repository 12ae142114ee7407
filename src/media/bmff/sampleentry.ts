// Sample description (ISO/IEC 14496-12 §8.5.2 stsd, §12.1.3 VisualSampleEntry, §12.2.3 AudioSampleEntry) with the
// codec configuration boxes of ISO/IEC 14496-15 (avcC §5.4.2.1, hvcC §8.4.1.1) and ISO/IEC 14496-14 (esds).
import type { TrackKind } from '../types.ts';
import { codecStringAvc, codecStringHevc } from './avc.ts';
import { codecStringFromConfig, parseAudioSpecificConfig, parseEsds } from './esds.ts';
import { type Box, children, malformed, payloadReader, pick, required, unsupported } from './reader.ts';

export interface SampleDescription {
  kind: TrackKind;
  sampleEntry: string;
  codec: string;
  codecConfig: Uint8Array;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
}

const VISUAL: Record<string, string> = { avc1: 'avcC', avc3: 'avcC', hvc1: 'hvcC', hev1: 'hvcC' };

/** The first (CMAF: only) sample entry of an stsd box. */
export function parseStsd(bytes: Uint8Array, stsd: Box): SampleDescription {
  const r = payloadReader(bytes, stsd);
  r.fullBox();
  const entry_count = r.u32();
  if (entry_count === 0) throw malformed('stsd has no sample entry');
  if (entry_count > 1) throw unsupported(`stsd has ${entry_count} sample entries; one is supported`);
  const first = children(bytes, r.pos, stsd.end, 'stsd').next();
  if (first.done) throw malformed('stsd has no sample entry');
  const entry = first.value;
  if (entry.type in VISUAL) return visualEntry(bytes, entry);
  if (entry.type === 'mp4a') return audioEntry(bytes, entry);
  if (entry.type === 'encv' || entry.type === 'enca') throw unsupported('encrypted sample entries are not supported');
  throw unsupported(`sample entry '${entry.type}' is not supported`);
}

function visualEntry(bytes: Uint8Array, entry: Box): SampleDescription {
  const r = payloadReader(bytes, entry);
  r.skip(6 + 2); // SampleEntry: reserved, data_reference_index
  r.skip(2 + 2 + 12); // pre_defined, reserved, pre_defined
  const width = r.u16();
  const height = r.u16();
  r.skip(4 + 4 + 4 + 2 + 32 + 2 + 2); // resolutions, reserved, frame_count, compressorname, depth, pre_defined
  const configType = VISUAL[entry.type] ?? '';
  // Other children (btrt, pasp, colr, fiel, clap, …) are tolerated and skipped.
  const config = required(pick(bytes, { ...entry, payload: r.pos }, [configType]), configType, entry.type);
  const codecConfig = bytes.slice(config.payload, config.end);
  const codec =
    configType === 'avcC' ? codecStringAvc(codecConfig, entry.type) : codecStringHevc(codecConfig, entry.type);
  return { kind: 'video', sampleEntry: entry.type, codec, codecConfig, width, height };
}

function audioEntry(bytes: Uint8Array, entry: Box): SampleDescription {
  const r = payloadReader(bytes, entry);
  r.skip(6 + 2); // SampleEntry: reserved, data_reference_index
  // reserved(2×32) in 14496-12; QuickTime puts a sound description version in the first 16 bits (1 → +16 bytes,
  // 2 → +36 bytes of extension fields before the child boxes).
  const qtVersion = r.u16();
  r.skip(6);
  const channelcount = r.u16();
  r.skip(2 + 2 + 2); // samplesize, pre_defined, reserved
  const samplerate = r.u32() >>> 16; // 16.16 fixed point
  if (qtVersion === 1) r.skip(16);
  else if (qtVersion === 2) r.skip(36);
  const esdsBox = required(pick(bytes, { ...entry, payload: r.pos }, ['esds']), 'esds', entry.type);
  const config = parseEsds(bytes.subarray(esdsBox.payload, esdsBox.end));
  const codec = codecStringFromConfig(config);
  let sampleRate: number | undefined = samplerate;
  let channels: number | undefined = channelcount;
  if (config.objectTypeIndication === 0x40) {
    const asc = parseAudioSpecificConfig(config.decoderSpecificInfo);
    sampleRate = asc.sampleRate ?? sampleRate;
    channels = asc.channels ?? channels;
  }
  if (!sampleRate || !channels) throw malformed(`'${entry.type}' gives no sample rate or channel count`);
  return {
    kind: 'audio',
    sampleEntry: entry.type,
    codec,
    codecConfig: config.decoderSpecificInfo,
    sampleRate,
    channels,
  };
}

/** hdlr handler_type (§8.4.3) → track kind. */
export function handlerKind(handler_type: string): TrackKind {
  if (handler_type === 'vide') return 'video';
  if (handler_type === 'soun') return 'audio';
  throw unsupported(`track handler '${handler_type}' is not supported (video or audio only)`);
}
