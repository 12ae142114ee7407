import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import { AMF0, type Amf0Value, decodeAmf0, decodeAmf0All, EcmaArray, ecmaArray, encodeAmf0 } from './amf0.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const isProtocolError = (err: unknown) => err instanceof SmoothcastError && err.code === 'RTMP_PROTOCOL';

describe('amf0', () => {
  it('encodes each type as AMF0 §2 lays it out', () => {
    assert.equal(hex(encodeAmf0(1)), '003ff0000000000000');
    assert.equal(hex(encodeAmf0(true, false)), '01010100');
    assert.equal(hex(encodeAmf0('connect')), '0200076' + '36f6e6e656374');
    assert.equal(hex(encodeAmf0(null, undefined)), '0506');
    assert.equal(hex(encodeAmf0({ a: 1 })), '03' + '000161' + '003ff0000000000000' + '000009');
    assert.equal(hex(encodeAmf0(ecmaArray({ a: true }))), '08' + '00000001' + '000161' + '0101' + '000009');
    assert.equal(hex(encodeAmf0([1, 'x'])), '0a' + '00000002' + '003ff0000000000000' + '02000178');
    assert.equal(hex(encodeAmf0(new Date(0))), '0b' + '0000000000000000' + '0000');
    const long = 'é'.repeat(40_000); // 80,000 UTF-8 bytes: past a short string's u16 length
    assert.equal(hex(encodeAmf0(long).subarray(0, 5)), `0c${(80_000).toString(16).padStart(8, '0')}`);
  });

  it('round-trips every type, nested, and reports where the value ends', () => {
    const value: Amf0Value = {
      n: -1.5,
      b: true,
      s: 'héllo',
      z: null,
      u: undefined,
      d: new Date(1_700_000_000_000),
      arr: [1, [2, [3]], { k: 'v' }],
      meta: ecmaArray({ width: 1280, height: 720, nested: { deep: [true] } }),
      long: 'x'.repeat(70_000),
      '': 'empty key',
    };
    const encoded = encodeAmf0(value, 'after');
    const { value: back, end } = decodeAmf0(encoded);
    assert.deepEqual(back, value);
    assert.equal(decodeAmf0(encoded, end).value, 'after');
    assert.deepEqual(decodeAmf0All(encoded), [value, 'after']);
  });

  it('decodes a command the way ffmpeg sends it (ECMA array count is only a hint)', () => {
    // ["@setDataFrame", "onMetaData", ECMA array declaring 0 entries but holding one]
    const body = bytes(`02000d 40736574446174614672616d65 02000a 6f6e4d65746144617461
      08 00000000 0005 7769647468 00 4074000000000000 000009`);
    const [a, b, c] = decodeAmf0All(body);
    assert.equal(a, '@setDataFrame');
    assert.equal(b, 'onMetaData');
    assert.ok(c instanceof EcmaArray);
    assert.deepEqual(c.properties, { width: 320 });
  });

  it('keeps a __proto__ key as data', () => {
    // A computed key is an own property named __proto__ (no prototype change), so the encoder writes it as data.
    const evil = bytes('03 0009 5f5f70726f746f5f5f 03 0008 706f6c6c75746564 0101 000009 000009');
    assert.equal(hex(encodeAmf0({ ['__proto__']: { polluted: true } })), hex(evil));
    const { value } = decodeAmf0(evil);
    assert.ok(value && typeof value === 'object');
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.deepEqual(Object.keys(value), ['__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('refuses malformed input with RTMP_PROTOCOL, never another error', () => {
    const cases: [string, string][] = [
      ['', 'empty'],
      ['00 3ff0', 'short number'],
      ['02 0005 6162', 'short string'],
      ['0c ffffffff 00', 'long string past the end'],
      ['03 0001 61 00', 'object property value cut short'],
      ['03 0001 61 003ff0000000000000', 'object without end marker'],
      ['08 00000001', 'ECMA array without properties'],
      ['0a 7fffffff 05', 'strict array count past the end'],
      ['0b 0000000000000000 00', 'short date'],
      ['07 0001', 'reference (unsupported)'],
      ['04', 'movieclip (reserved)'],
      ['09', 'object end where a value belongs'],
      ['11 00', 'AVM+ switch'],
      ['ff', 'unknown marker'],
    ];
    for (const [h, what] of cases) {
      assert.throws(() => decodeAmf0(bytes(h)), isProtocolError, what);
    }
    assert.throws(() => decodeAmf0All(bytes('05 02 00')), isProtocolError, 'trailing garbage in a command');
  });

  it('bounds depth, property count and string size', () => {
    const nest = (n: number): Amf0Value => (n === 0 ? 1 : [nest(n - 1)]);
    assert.doesNotThrow(() => decodeAmf0(encodeAmf0(nest(16))));
    // Built by hand: the encoder refuses to write past the limit too.
    const deep = new Uint8Array([...Array.from({ length: 17 }, () => [0x0a, 0, 0, 0, 1]).flat(), 0x05]);
    assert.throws(() => decodeAmf0(deep), isProtocolError);
    assert.throws(() => encodeAmf0(nest(17)), isProtocolError);

    const wide = Object.fromEntries(Array.from({ length: 4097 }, (_, i) => [`k${i}`, i]));
    assert.throws(() => decodeAmf0(encodeAmf0(wide)), isProtocolError);
    const justEnough = Object.fromEntries(Array.from({ length: 4096 }, (_, i) => [`k${i}`, i]));
    assert.doesNotThrow(() => decodeAmf0(encodeAmf0(justEnough)));
    // The budget is shared by the whole decode: many small arrays add up.
    const many = encodeAmf0(Array.from({ length: 64 }, () => Array.from({ length: 64 }, () => null)));
    assert.throws(() => decodeAmf0(many), isProtocolError);

    assert.throws(() => decodeAmf0(encodeAmf0('x'.repeat(100)), 0, { maxStringBytes: 99 }), isProtocolError);
    assert.equal(decodeAmf0(encodeAmf0('x'.repeat(99)), 0, { maxStringBytes: 99 }).end, 102);
  });

  it('markers are the ones the spec numbers', () => {
    assert.deepEqual(
      [AMF0.number, AMF0.object, AMF0.ecmaArray, AMF0.objectEnd, AMF0.strictArray, AMF0.date, AMF0.longString],
      [0, 3, 8, 9, 10, 11, 12],
    );
  });
});
