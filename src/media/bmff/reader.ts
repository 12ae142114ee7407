// Bounds-checked reading of ISO-BMFF bytes (ISO/IEC 14496-12 §4.2 box structure). Every read goes through Reader,
// so a short or lying input ends in a SmoothcastError, never a RangeError or an out-of-bounds value.
import { SmoothcastError } from '../../core/errors.ts';

export function malformed(message: string): SmoothcastError {
  return new SmoothcastError('BMFF_MALFORMED', message);
}

export function unsupported(message: string): SmoothcastError {
  return new SmoothcastError('BMFF_UNSUPPORTED', message);
}

/** Four-character code as text; bytes outside printable ASCII are shown as \xNN so messages stay readable. */
export function fourcc(bytes: Uint8Array, at: number): string {
  let s = '';
  for (let i = at; i < at + 4; i++) {
    const c = bytes[i] ?? 0;
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return s;
}

export class Reader {
  readonly bytes: Uint8Array;
  readonly end: number;
  /** What is being read, for error messages ('tkhd', 'trun sample 3', …). */
  readonly what: string;
  pos: number;
  private readonly view: DataView;

  constructor(bytes: Uint8Array, what: string, start = 0, end = bytes.length) {
    if (start < 0 || end > bytes.length || start > end)
      throw malformed(`${what}: range ${start}..${end} out of bounds`);
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.what = what;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throws unless n more bytes are present. */
  need(n: number): void {
    if (!(n >= 0 && n <= this.end - this.pos)) {
      throw malformed(`${this.what}: needs ${n} bytes at offset ${this.pos}, only ${this.end - this.pos} left`);
    }
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = (this.view.getUint8(this.pos) << 16) | this.view.getUint16(this.pos + 1);
    this.pos += 3;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos);
    this.pos += 4;
    return v;
  }

  /** unsigned int(64); values past 2^53 cannot be held exactly in a number and are refused. */
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw unsupported(`${this.what}: 64-bit value ${v} is too large`);
    return Number(v);
  }

  fourcc(): string {
    this.need(4);
    const s = fourcc(this.bytes, this.pos);
    this.pos += 4;
    return s;
  }

  /** A view (no copy) of the next n bytes. */
  bytesView(n: number): Uint8Array {
    this.need(n);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** FullBox header (§4.2): version(8) + flags(24). */
  fullBox(): { version: number; flags: number } {
    const version = this.u8();
    const flags = this.u24();
    return { version, flags };
  }
}

/** A box located inside a byte array; offsets are indexes into that array. */
export interface Box {
  type: string;
  /** Index of the first header byte. */
  start: number;
  /** Index of the first payload byte (after size, type, largesize and a 'uuid' usertype). */
  payload: number;
  /** Index one past the last byte. */
  end: number;
}

/**
 * Child boxes of [start, end) (§4.2: size, type, size==1 → largesize, 'uuid' → usertype). size==0 ("to the end of the
 * file") is only meaningful at file level and is refused here; the file-level walk is the indexer's job.
 */
export function* children(bytes: Uint8Array, start: number, end: number, parent: string): Generator<Box> {
  const r = new Reader(bytes, `box inside '${parent}'`, start, end);
  let pos = start;
  while (pos < end) {
    r.pos = pos;
    let size = r.u32();
    const type = r.fourcc();
    if (size === 1) size = r.u64();
    else if (size === 0) throw malformed(`box '${type}' inside '${parent}' has size 0`);
    if (type === 'uuid') r.skip(16);
    const headerSize = r.pos - pos;
    if (size < headerSize || size > end - pos) {
      throw malformed(`box '${type}' at ${pos} inside '${parent}' has size ${size}, ${end - pos} bytes available`);
    }
    yield { type, start: pos, payload: pos + headerSize, end: pos + size };
    pos += size;
  }
}

/**
 * One pass over the children of `parent`, keeping the first of each wanted type; a wanted type that appears twice is
 * malformed (these boxes are "exactly one" / "zero or one" in §8). Other children are skipped.
 */
export function pick(bytes: Uint8Array, parent: Box, wanted: readonly string[]): Map<string, Box> {
  const found = new Map<string, Box>();
  for (const b of children(bytes, parent.payload, parent.end, parent.type)) {
    if (!wanted.includes(b.type)) continue;
    if (found.has(b.type)) throw malformed(`'${parent.type}' holds more than one '${b.type}'`);
    found.set(b.type, b);
  }
  return found;
}

export function required(found: Map<string, Box>, type: string, parent: string): Box {
  const b = found.get(type);
  if (!b) throw malformed(`'${parent}' has no '${type}'`);
  return b;
}

export function payloadReader(bytes: Uint8Array, box: Box): Reader {
  return new Reader(bytes, box.type, box.payload, box.end);
}
