// AVC and HEVC decoder configuration records (ISO/IEC 14496-15 §5.3.3.1, §8.3.3.1) and their RFC 6381 codec strings.
import { malformed, Reader } from './reader.ts';

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

/**
 * RFC 6381 §3.3: 'avc1.PPCCLL' from the AVCDecoderConfigurationRecord (avcC payload): AVCProfileIndication,
 * profile_compatibility and AVCLevelIndication as upper-case hex. `sampleEntry` is 'avc1' or 'avc3'.
 */
export function codecStringAvc(avcC: Uint8Array, sampleEntry = 'avc1'): string {
  const r = new Reader(avcC, 'avcC');
  const configurationVersion = r.u8();
  if (configurationVersion !== 1) throw malformed(`avcC configurationVersion ${configurationVersion}, expected 1`);
  const profile = r.u8();
  const compatibility = r.u8();
  const level = r.u8();
  return `${sampleEntry}.${hex2(profile)}${hex2(compatibility)}${hex2(level)}`;
}

/**
 * ISO/IEC 14496-15 Annex E (codecs parameter for HEVC): '<entry>.<space><profile_idc>.<compatibility flags, bit-reversed, hex>.<L|H><level_idc>
 * [.<constraint byte>…]' with trailing zero constraint bytes left out, e.g. 'hvc1.1.6.L93.B0'.
 */
export function codecStringHevc(hvcC: Uint8Array, sampleEntry: string): string {
  const r = new Reader(hvcC, 'hvcC');
  const configurationVersion = r.u8();
  if (configurationVersion !== 1) throw malformed(`hvcC configurationVersion ${configurationVersion}, expected 1`);
  const b = r.u8();
  const general_profile_space = b >> 6;
  const general_tier_flag = (b >> 5) & 1;
  const general_profile_idc = b & 0x1f;
  const general_profile_compatibility_flags = r.u32();
  const constraints = Array.from(r.bytesView(6));
  const general_level_idc = r.u8();
  let reversed = 0;
  for (let i = 0; i < 32; i++) reversed = (reversed << 1) | ((general_profile_compatibility_flags >>> i) & 1);
  while (constraints.length > 0 && constraints[constraints.length - 1] === 0) constraints.pop();
  const space = ['', 'A', 'B', 'C'][general_profile_space] ?? '';
  return [
    sampleEntry,
    `${space}${general_profile_idc}`,
    (reversed >>> 0).toString(16).toUpperCase(),
    `${general_tier_flag ? 'H' : 'L'}${general_level_idc}`,
    ...constraints.map(hex2),
  ].join('.');
}
