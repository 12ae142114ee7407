// RFC 6381 codec strings from hand-made configuration records (ISO/IEC 14496-15 §5.3.3.1, Annex E.3; 14496-3
// §1.6.2.1; 14496-1 §7.2.6).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import { codecStringAvc, codecStringHevc, codecStringMp4a, parseAudioSpecificConfig, parseEsds } from './index.ts';
import { avcC, esdsPayload } from './testing.ts';

function bmffError(code: string) {
  return (err: unknown) => err instanceof SmoothcastError && err.code === code;
}

/** Packs "0101 1…" bit strings (spaces ignored) into bytes, zero-padded. */
function bits(s: string): number[] {
  const b = s.replaceAll(' ', '');
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 8) out.push(Number.parseInt(b.slice(i, i + 8).padEnd(8, '0'), 2));
  return out;
}

describe('codecStringAvc', () => {
  it('writes profile, compatibility and level as upper-case hex', () => {
    assert.equal(codecStringAvc(avcC(0x64, 0x00, 0x1f)), 'avc1.64001F');
    assert.equal(codecStringAvc(avcC(0x42, 0xc0, 0x1e)), 'avc1.42C01E');
    assert.equal(codecStringAvc(avcC(0x4d, 0x40, 0x28), 'avc3'), 'avc3.4D4028');
  });
  it('refuses a wrong configurationVersion or a short record', () => {
    assert.throws(() => codecStringAvc(Uint8Array.from([0, 0x64, 0, 0x1f])), bmffError('BMFF_MALFORMED'));
    assert.throws(() => codecStringAvc(Uint8Array.from([1, 0x64])), bmffError('BMFF_MALFORMED'));
  });
});

function hvcC(b1: number, compat: number, constraints: number[], level: number): Uint8Array {
  const c = [(compat >>> 24) & 0xff, (compat >>> 16) & 0xff, (compat >>> 8) & 0xff, compat & 0xff];
  return Uint8Array.from([1, b1, ...c, ...constraints, level, 0xf0, 0, 0xfc]);
}

describe('codecStringHevc', () => {
  it('follows ISO/IEC 14496-15 Annex E.3', () => {
    // Main profile (1), compatibility flags 1 and 2 set, level 3.1 (93), progressive+frame-only constraints.
    assert.equal(codecStringHevc(hvcC(0x01, 0x60000000, [0xb0, 0, 0, 0, 0, 0], 93), 'hvc1'), 'hvc1.1.6.L93.B0');
    // Main 10, high tier, level 4 (120).
    assert.equal(codecStringHevc(hvcC(0x22, 0x20000000, [0xb0, 0, 0, 0, 0, 0], 120), 'hev1'), 'hev1.2.4.H120.B0');
    // Profile space 1 → 'A'; all constraint bytes kept up to the last non-zero one.
    assert.equal(
      codecStringHevc(hvcC(0x41, 0x40000000, [0x90, 0, 0x01, 0, 0, 0], 60), 'hvc1'),
      'hvc1.A1.2.L60.90.00.01',
    );
    // No constraint flags: nothing after the level.
    assert.equal(codecStringHevc(hvcC(0x01, 0x60000000, [0, 0, 0, 0, 0, 0], 90), 'hvc1'), 'hvc1.1.6.L90');
  });
  it('refuses a short record', () => {
    assert.throws(() => codecStringHevc(Uint8Array.from([1, 1, 0x60, 0, 0]), 'hvc1'), bmffError('BMFF_MALFORMED'));
  });
});

describe('codecStringMp4a', () => {
  it('AAC-LC from a minimal esds', () => {
    assert.equal(codecStringMp4a(esdsPayload(0x40, [0x12, 0x10])), 'mp4a.40.2');
  });
  it("reads ffmpeg's esds (4-byte descriptor sizes, ASC with SBR sync extension)", () => {
    const esds = Uint8Array.from(
      Buffer.from(
        '000000000380808025000100048080801740150000000001f4000001f4000580808005119056e500068080800102',
        'hex',
      ),
    );
    assert.equal(codecStringMp4a(esds), 'mp4a.40.2');
    const config = parseEsds(esds);
    assert.equal(config.objectTypeIndication, 0x40);
    assert.deepEqual([...config.decoderSpecificInfo], [0x11, 0x90, 0x56, 0xe5, 0x00]);
    assert.deepEqual(parseAudioSpecificConfig(config.decoderSpecificInfo), {
      audioObjectType: 2,
      sampleRate: 48000,
      channels: 2,
    });
  });
  it('HE-AAC and HE-AACv2 with explicit signalling (AOT 5 / 29)', () => {
    // AOT 5, 24 kHz core (index 6), stereo, extension index 3 (48 kHz), then AOT 2.
    const he = bits('00101 0110 0010 0011 00010');
    assert.equal(codecStringMp4a(esdsPayload(0x40, he)), 'mp4a.40.5');
    assert.deepEqual(parseAudioSpecificConfig(Uint8Array.from(he)), {
      audioObjectType: 5,
      sampleRate: 48000,
      channels: 2,
    });
    // AOT 29 (PS), mono core → stereo output.
    const v2 = bits('11101 0110 0001 0011 00010');
    assert.equal(codecStringMp4a(esdsPayload(0x40, v2)), 'mp4a.40.29');
    assert.equal(parseAudioSpecificConfig(Uint8Array.from(v2)).channels, 2);
  });
  it('escaped audioObjectType and explicit sampling frequency', () => {
    // AOT 31 escape + 6 bits (42 = USAC), index 15 + 24-bit 44056 Hz, channel configuration 7 → 8 channels.
    const asc = bits(`11111 001010 1111 ${(44056).toString(2).padStart(24, '0')} 0111`);
    assert.equal(codecStringMp4a(esdsPayload(0x40, asc)), 'mp4a.40.42');
    assert.deepEqual(parseAudioSpecificConfig(Uint8Array.from(asc)), {
      audioObjectType: 42,
      sampleRate: 44056,
      channels: 8,
    });
    // channelConfiguration 0 (program_config_element): left to the sample entry.
    assert.equal(parseAudioSpecificConfig(Uint8Array.from(bits('00010 0011 0000'))).channels, undefined);
  });
  it('other objectTypeIndications give two elements in lower-case hex', () => {
    assert.equal(codecStringMp4a(esdsPayload(0x6b, [])), 'mp4a.6b');
  });
  it('refuses broken descriptors', () => {
    assert.throws(() => codecStringMp4a(Uint8Array.from([0, 0, 0, 0])), bmffError('BMFF_MALFORMED'));
    assert.throws(() => codecStringMp4a(esdsPayload(0x40, [])), bmffError('BMFF_MALFORMED'));
    assert.throws(() => codecStringMp4a(esdsPayload(0x40, [0x12])), bmffError('BMFF_MALFORMED'));
    const truncated = esdsPayload(0x40, [0x12, 0x10]).subarray(0, 12);
    assert.throws(() => codecStringMp4a(truncated), bmffError('BMFF_MALFORMED'));
    const longSize = Uint8Array.from([0, 0, 0, 0, 0x03, 0x80, 0x80, 0x80, 0x80, 0x01]);
    assert.throws(() => codecStringMp4a(longSize), bmffError('BMFF_MALFORMED'));
  });
});
