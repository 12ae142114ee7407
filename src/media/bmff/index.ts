// ISO-BMFF reading for single-track CMAF files (ISO/IEC 14496-12, 14496-15, 23000-19).
export { codecStringAvc, codecStringHevc } from './avc.ts';
export { codecStringMp4a, parseAudioSpecificConfig, parseEsds } from './esds.ts';
export { FragmentIndexer, type IndexLimits, indexBuffer } from './indexer.ts';
export { summarizeIndex } from './summary.ts';
