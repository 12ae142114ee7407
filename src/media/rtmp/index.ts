// RTMP ingest, publish side, as pure code: AMF0, the handshake, the chunk stream, the session state machine and
// the FLV framing that hands the media to ffmpeg. Sockets and processes live in roles/live.
export {
  AMF0,
  AMF0_LIMITS,
  type Amf0Limits,
  type Amf0Object,
  type Amf0Value,
  decodeAmf0,
  decodeAmf0All,
  EcmaArray,
  ecmaArray,
  encodeAmf0,
  propertiesOf,
} from './amf0.ts';
export {
  CHUNK_READER_LIMITS,
  ChunkReader,
  type ChunkReaderLimits,
  ChunkWriter,
  type ChunkWriterOptions,
  DEFAULT_CHUNK_SIZE,
  MSG,
  type OutgoingMessage,
  type RtmpMessage,
} from './chunk.ts';
export {
  type AudioCodec,
  type AudioTagInfo,
  audioCodec,
  FLV_TAG,
  type FlvTagRecord,
  type FlvTagType,
  flvHeader,
  flvTag,
  metadataBody,
  metadataCodecs,
  readFlvTags,
  type VideoCodec,
  type VideoTagInfo,
  videoCodec,
} from './flv.ts';
export { HANDSHAKE_SIZE, type HandshakeResult, type RandomBytes, RTMP_VERSION, ServerHandshake } from './handshake.ts';
export {
  type PublishRefusal,
  type RtmpEvent,
  type RtmpOutput,
  RtmpSession,
  type RtmpSessionOptions,
  type SessionState,
} from './session.ts';
