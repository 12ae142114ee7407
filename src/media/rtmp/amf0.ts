// AMF0 (Adobe Action Message Format 0, "AMF 0 File Format Specification" 2007), the encoding of RTMP command and
// data messages. Decoding is bounded (depth, property count, string size) so a hostile message costs at most about
// its own size; every failure is a SmoothcastError RTMP_PROTOCOL, never a RangeError.
import { SmoothcastError } from '../../core/errors.ts';

export function protocolError(message: string): SmoothcastError {
  return new SmoothcastError('RTMP_PROTOCOL', message);
}

/** AMF0 type markers (AMF0 §2.1). */
export const AMF0 = {
  number: 0x00,
  boolean: 0x01,
  string: 0x02,
  object: 0x03,
  null: 0x05,
  undefined: 0x06,
  reference: 0x07,
  ecmaArray: 0x08,
  objectEnd: 0x09,
  strictArray: 0x0a,
  date: 0x0b,
  longString: 0x0c,
  unsupported: 0x0d,
} as const;

/**
 * A decoded AMF0 value. Objects and ECMA arrays both decode to plain objects (own properties only, so a key such as
 * `__proto__` stays data); an ECMA array is encoded by wrapping the object in `ecmaArray()`.
 */
export type Amf0Value = number | boolean | string | null | undefined | Date | Amf0Object | EcmaArray | Amf0Value[];
export interface Amf0Object {
  [key: string]: Amf0Value;
}

/** Marks an object to be encoded as an ECMA array (AMF0 §2.10), as onMetaData is by ffmpeg and OBS. */
export class EcmaArray {
  readonly properties: Amf0Object;
  constructor(properties: Amf0Object) {
    this.properties = properties;
  }
}

export function ecmaArray(properties: Amf0Object): EcmaArray {
  return new EcmaArray(properties);
}

export interface Amf0Limits {
  /** Nesting of objects and arrays. */
  maxDepth: number;
  /** Properties and array elements in one decode call, all levels together. */
  maxProperties: number;
  /** UTF-8 bytes of one string value or key. */
  maxStringBytes: number;
}

export const AMF0_LIMITS: Amf0Limits = { maxDepth: 16, maxProperties: 4096, maxStringBytes: 1 << 20 };

/** `obj[key] = value` that never invokes the `__proto__` setter. */
function define(obj: Amf0Object, key: string, value: Amf0Value): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

class Decoder {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly limits: Amf0Limits;
  pos: number;
  properties = 0;

  constructor(bytes: Uint8Array, pos: number, limits: Amf0Limits) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.limits = limits;
    this.pos = pos;
  }

  need(n: number, what: string): void {
    if (n > this.bytes.length - this.pos) {
      throw protocolError(`AMF0 ${what}: needs ${n} bytes at offset ${this.pos}, ${this.bytes.length - this.pos} left`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++] as number;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  f64(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  utf8(length: number, what: string): string {
    if (length > this.limits.maxStringBytes) {
      throw protocolError(`AMF0 ${what}: ${length} bytes is over the limit of ${this.limits.maxStringBytes}`);
    }
    this.need(length, what);
    const s = utf8.decode(this.bytes.subarray(this.pos, this.pos + length));
    this.pos += length;
    return s;
  }

  count(what: string): void {
    if (++this.properties > this.limits.maxProperties) {
      throw protocolError(`AMF0 ${what}: more than ${this.limits.maxProperties} properties`);
    }
  }

  /** Properties up to the object-end marker (AMF0 §2.5): UTF-8 key, value; an empty key then 0x09 ends. */
  properties_(depth: number, what: string): Amf0Object {
    const obj: Amf0Object = {};
    for (;;) {
      const key = this.utf8(this.u16(`${what} key`), `${what} key`);
      if (key === '' && this.bytes[this.pos] === AMF0.objectEnd) {
        this.pos++;
        return obj;
      }
      this.count(what);
      define(obj, key, this.value(depth + 1));
    }
  }

  value(depth: number): Amf0Value {
    if (depth > this.limits.maxDepth) throw protocolError(`AMF0: nested deeper than ${this.limits.maxDepth}`);
    const at = this.pos;
    const marker = this.u8('type marker');
    switch (marker) {
      case AMF0.number:
        return this.f64('number');
      case AMF0.boolean:
        return this.u8('boolean') !== 0;
      case AMF0.string:
        return this.utf8(this.u16('string length'), 'string');
      case AMF0.longString:
        return this.utf8(this.u32('long string length'), 'long string');
      case AMF0.object:
        return this.properties_(depth, 'object');
      case AMF0.ecmaArray:
        // The associative-count is a hint (AMF0 §2.10); the properties still end with an object-end marker.
        this.u32('ECMA array count');
        return new EcmaArray(this.properties_(depth, 'ECMA array'));
      case AMF0.strictArray: {
        const n = this.u32('strict array count');
        // Every element takes at least one byte: a count past the end is refused before anything is allocated.
        this.need(n, 'strict array elements');
        const out: Amf0Value[] = [];
        for (let i = 0; i < n; i++) {
          this.count('strict array');
          out.push(this.value(depth + 1));
        }
        return out;
      }
      case AMF0.date: {
        const ms = this.f64('date');
        this.u16('date time zone'); // AMF0 §2.13: reserved, should be 0; not used
        return new Date(ms);
      }
      case AMF0.null:
        return null;
      case AMF0.undefined:
      case AMF0.unsupported:
        return undefined;
      default:
        throw protocolError(`AMF0: unsupported type marker 0x${marker.toString(16).padStart(2, '0')} at offset ${at}`);
    }
  }
}

function limitsOf(limits: Partial<Amf0Limits> | undefined): Amf0Limits {
  return limits ? { ...AMF0_LIMITS, ...limits } : AMF0_LIMITS;
}

/** One AMF0 value at `offset`; `end` is the offset just past it. ECMA arrays come back as EcmaArray. */
export function decodeAmf0(
  bytes: Uint8Array,
  offset = 0,
  limits?: Partial<Amf0Limits>,
): { value: Amf0Value; end: number } {
  const d = new Decoder(bytes, offset, limitsOf(limits));
  const value = d.value(0);
  return { value, end: d.pos };
}

/** Every value from `offset` to the end of `bytes` (a command or data message body), limits shared by all. */
export function decodeAmf0All(bytes: Uint8Array, offset = 0, limits?: Partial<Amf0Limits>): Amf0Value[] {
  const d = new Decoder(bytes, offset, limitsOf(limits));
  const out: Amf0Value[] = [];
  while (d.pos < bytes.length) {
    d.count('message');
    out.push(d.value(0));
  }
  return out;
}

/** An object or ECMA array's properties, or undefined for anything else. */
export function propertiesOf(v: Amf0Value): Amf0Object | undefined {
  if (v instanceof EcmaArray) return v.properties;
  if (typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date)) return v;
  return undefined;
}

class Encoder {
  chunks: Uint8Array[] = [];

  byte(b: number): void {
    this.chunks.push(Uint8Array.of(b));
  }

  u16(v: number): void {
    this.chunks.push(Uint8Array.of(v >>> 8, v & 0xff));
  }

  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0);
    this.chunks.push(b);
  }

  f64(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v);
    this.chunks.push(b);
  }

  key(k: string): void {
    const b = utf8Encoder.encode(k);
    if (b.length > 0xffff) throw protocolError(`AMF0: property name of ${b.length} bytes is too long`);
    this.u16(b.length);
    this.chunks.push(b);
  }

  props(obj: Amf0Object, depth: number): void {
    for (const [k, v] of Object.entries(obj)) {
      this.key(k);
      this.value(v, depth + 1);
    }
    this.chunks.push(Uint8Array.of(0, 0, AMF0.objectEnd));
  }

  value(v: Amf0Value, depth: number): void {
    if (depth > AMF0_LIMITS.maxDepth) throw protocolError(`AMF0: nested deeper than ${AMF0_LIMITS.maxDepth}`);
    if (v === null) this.byte(AMF0.null);
    else if (v === undefined) this.byte(AMF0.undefined);
    else if (typeof v === 'number') {
      this.byte(AMF0.number);
      this.f64(v);
    } else if (typeof v === 'boolean') {
      this.chunks.push(Uint8Array.of(AMF0.boolean, v ? 1 : 0));
    } else if (typeof v === 'string') {
      const b = utf8Encoder.encode(v);
      if (b.length > 0xffff) {
        this.byte(AMF0.longString);
        this.u32(b.length);
      } else {
        this.byte(AMF0.string);
        this.u16(b.length);
      }
      this.chunks.push(b);
    } else if (v instanceof Date) {
      this.byte(AMF0.date);
      this.f64(v.getTime());
      this.u16(0);
    } else if (Array.isArray(v)) {
      this.byte(AMF0.strictArray);
      this.u32(v.length);
      for (const e of v) this.value(e, depth + 1);
    } else if (v instanceof EcmaArray) {
      this.byte(AMF0.ecmaArray);
      this.u32(Object.keys(v.properties).length);
      this.props(v.properties, depth);
    } else {
      this.byte(AMF0.object);
      this.props(v, depth);
    }
  }
}

/** The AMF0 encoding of each value in turn (strings over 65535 UTF-8 bytes become long strings). */
export function encodeAmf0(...values: Amf0Value[]): Uint8Array {
  const e = new Encoder();
  for (const v of values) e.value(v, 0);
  return concatBytes(e.chunks);
}

export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
