// Common Media Client Data (CTA-5004): what a player says about itself on each request, as four headers
// (CMCD-Request, CMCD-Object, CMCD-Status, CMCD-Session, §2.1) or one `CMCD` query parameter (§2.2). The payload is
// a structured-field dictionary (RFC 8941 §3.2, which CTA-5004 §3.1 follows): `key=value` members separated by
// commas, a key without a value is boolean true (`bs`, `su`), strings in double quotes with `\"` and `\\` escapes,
// tokens unquoted (`ot=v`), integers and decimals bare. CMCD v2 sends some numbers as inner lists (`br=(3000)`)
// and booleans as `?1`/`?0`: both are read. Parsing is strict and bounded: one linear pass over at most
// MAX_CMCD_BYTES, any syntax or type error gives null, unknown keys are read and ignored.

/** Object types (CTA-5004 §3.3 `ot`): manifest, audio, video, muxed, init, caption, timed text, key, other. */
export type CmcdObjectType = 'm' | 'a' | 'v' | 'av' | 'i' | 'c' | 'tt' | 'k' | 'o';

/** The keys the origin uses, typed (CTA-5004 §3.3; bit rates in kbps, durations and lengths in ms). */
export interface Cmcd {
  /** Session id (≤ 64 characters). */
  sid?: string;
  /** Content id (≤ 64 characters). */
  cid?: string;
  /** CMCD version (absent: 1). */
  v?: number;
  /** Encoded bitrate of the object, kbps. */
  br?: number;
  /** Object duration, ms. */
  d?: number;
  ot?: CmcdObjectType;
  /** Top bitrate the player may pick for this object type, kbps. */
  tb?: number;
  /** Buffer length, ms. */
  bl?: number;
  /** Deadline: ms until the buffer runs dry at the playback rate. */
  dl?: number;
  /** Measured throughput, kbps. */
  mtp?: number;
  /** Next object request (a relative URL) and next range request. */
  nor?: string;
  nrr?: string;
  /** Startup: the object is needed urgently (startup, seeking or recovery after the buffer ran dry). */
  su?: boolean;
  /** Buffer starvation since the previous request. */
  bs?: boolean;
  /** Requested maximum throughput, kbps. */
  rtp?: number;
  /** Playback rate (absent: 1). */
  pr?: number;
  /** Streaming format: DASH, HLS, Smooth, other. */
  sf?: 'd' | 'h' | 's' | 'o';
  /** Stream type: VOD, live, low-latency live. */
  st?: 'v' | 'l' | 'll';
}

/** The header names, lower case as Node gives them. */
export const CMCD_HEADERS = ['cmcd-request', 'cmcd-object', 'cmcd-status', 'cmcd-session'] as const;

/** Longest CMCD payload read (the four headers and the query parameter together), bytes. */
export const MAX_CMCD_BYTES = 1024;

type Bare = number | string | boolean | { token: string };
/** A member's value: a bare item, or the items of an inner list. */
type Value = Bare | Bare[];

const INT_KEYS = ['br', 'd', 'tb', 'bl', 'dl', 'mtp', 'rtp', 'v'] as const;
const STRING_KEYS = { sid: 64, cid: 64, nor: 1024, nrr: 64 } as const;
const BOOL_KEYS = ['su', 'bs'] as const;
const TOKENS = {
  ot: new Set(['m', 'a', 'v', 'av', 'i', 'c', 'tt', 'k', 'o']),
  sf: new Set(['d', 'h', 's', 'o']),
  st: new Set(['v', 'l', 'll']),
} as const;

type Headers = Readonly<Record<string, string | string[] | undefined>>;

/** Whether a request carries CMCD at all (the four headers, or `CMCD=` in its URL). */
export function hasCmcd(headers: Headers, url: string): boolean {
  return (
    headers['cmcd-request'] !== undefined ||
    headers['cmcd-object'] !== undefined ||
    headers['cmcd-status'] !== undefined ||
    headers['cmcd-session'] !== undefined ||
    url.includes('CMCD=')
  );
}

/**
 * The CMCD of a request: its headers and its `CMCD` query parameter (a header's key wins over the query's). null
 * when there is none, when it is longer than MAX_CMCD_BYTES, or when any part is malformed (syntax, a known key
 * with a value of the wrong type or out of range). Never throws.
 */
export function parseCmcdRequest(headers: Headers, url: string): Cmcd | null {
  const parts: string[] = [];
  let total = 0;
  const q = url.indexOf('?');
  if (q >= 0 && url.includes('CMCD=', q)) {
    const raw = queryValue(url.slice(q + 1), 'CMCD');
    if (raw === null) return null;
    total += raw.length;
    if (total > MAX_CMCD_BYTES) return null;
    parts.push(raw);
  }
  for (const name of CMCD_HEADERS) {
    const h = headers[name];
    if (h === undefined) continue;
    // A repeated header arrives as an array (or joined with ", " by Node): one dictionary either way (RFC 8941 §4.2).
    const v = Array.isArray(h) ? h.join(',') : h;
    total += v.length;
    if (total > MAX_CMCD_BYTES) return null;
    parts.push(v);
  }
  if (parts.length === 0) return null;
  const out: Cmcd = {};
  for (const p of parts) {
    if (!parseCmcd(p, out)) return null;
  }
  return out;
}

/** `name`'s value in a query string, percent-decoded; null when it is absent or badly encoded. */
function queryValue(query: string, name: string): string | null {
  let found: string | null = null;
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq) !== name) continue;
    const raw = pair.slice(eq + 1);
    if (raw.length > MAX_CMCD_BYTES * 3) return null;
    try {
      found = decodeURIComponent(raw.replace(/\+/g, ' '));
    } catch {
      return null;
    }
  }
  return found;
}

/**
 * Reads one CMCD payload into `into` (a key given again overwrites, RFC 8941 §4.2.2); null when it is malformed.
 */
export function parseCmcd(text: string, into: Cmcd = {}): Cmcd | null {
  if (text.length > MAX_CMCD_BYTES) return null;
  const p = new Parser(text);
  const members = p.dictionary();
  if (members === null) return null;
  for (const [key, value] of members) {
    if (!assign(into, key, value)) return null;
  }
  return into;
}

/** Stores a known key's value after checking its type; unknown keys are ignored (CTA-5004 §3.2). */
function assign(out: Cmcd, key: string, value: Value): boolean {
  if ((INT_KEYS as readonly string[]).includes(key)) {
    // v2 inner lists (`br=(3000 128)`): the first item is the object's own (CTA-5004-A §3.3).
    const n = Array.isArray(value) ? value[0] : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return false;
    out[key as (typeof INT_KEYS)[number]] = n;
    return true;
  }
  if (key === 'pr') {
    if (typeof value !== 'number' || value < 0) return false;
    out.pr = value;
    return true;
  }
  if (Object.hasOwn(STRING_KEYS, key)) {
    const max = STRING_KEYS[key as keyof typeof STRING_KEYS];
    if (typeof value !== 'string' || value.length > max) return false;
    out[key as keyof typeof STRING_KEYS] = value;
    return true;
  }
  if ((BOOL_KEYS as readonly string[]).includes(key)) {
    if (typeof value !== 'boolean') return false;
    out[key as (typeof BOOL_KEYS)[number]] = value;
    return true;
  }
  if (Object.hasOwn(TOKENS, key)) {
    const set: ReadonlySet<string> = TOKENS[key as keyof typeof TOKENS];
    if (typeof value !== 'object' || Array.isArray(value) || !set.has(value.token)) return false;
    (out as Record<string, string>)[key] = value.token;
    return true;
  }
  return true;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isLcAlpha = (c: number) => c >= 0x61 && c <= 0x7a;
const isAlpha = (c: number) => isLcAlpha(c) || (c >= 0x41 && c <= 0x5a);
// RFC 9110 tchar, plus ":" and "/" (RFC 8941 §3.3.4).
const TCHAR = new Set([..."!#$%&'*+-.^_`|~:/"].map((c) => c.charCodeAt(0)));
const isTokenChar = (c: number) => isAlpha(c) || isDigit(c) || TCHAR.has(c);
// RFC 8941 keys are lower case; CTA-5004 §3.2's own custom-key example (`com.example-myNumericKey`) is not, so
// capitals are accepted after the first character.
const isKeyChar = (c: number) => isAlpha(c) || isDigit(c) || c === 0x5f || c === 0x2d || c === 0x2e || c === 0x2a;

/** A single forward pass over the text (RFC 8941 §4.2 parsing, the Dictionary, Item and Inner List parts). */
class Parser {
  readonly #s: string;
  #i = 0;

  constructor(s: string) {
    this.#s = s;
  }

  #peek(): number {
    return this.#i < this.#s.length ? this.#s.charCodeAt(this.#i) : -1;
  }

  #ows(): void {
    while (this.#peek() === 0x20 || this.#peek() === 0x09) this.#i++;
  }

  dictionary(): [string, Value][] | null {
    const out: [string, Value][] = [];
    this.#ows();
    if (this.#i >= this.#s.length) return null;
    for (;;) {
      const key = this.#key();
      if (key === null) return null;
      let value: Value = true;
      if (this.#peek() === 0x3d /* = */) {
        this.#i++;
        const v = this.#peek() === 0x28 /* ( */ ? this.#innerList() : this.#bare();
        if (v === null) return null;
        value = v;
      }
      if (!this.#params()) return null;
      out.push([key, value]);
      this.#ows();
      if (this.#i >= this.#s.length) return out;
      if (this.#peek() !== 0x2c /* , */) return null;
      this.#i++;
      this.#ows();
      // A trailing comma is an error (RFC 8941 §4.2.2).
      if (this.#i >= this.#s.length) return null;
    }
  }

  #key(): string | null {
    const start = this.#i;
    const c = this.#peek();
    if (!isLcAlpha(c) && c !== 0x2a) return null;
    this.#i++;
    while (isKeyChar(this.#peek())) this.#i++;
    return this.#s.slice(start, this.#i);
  }

  /** Parameters after an item (`;key=value`): read and dropped, CMCD defines none on its top-level members. */
  #params(): boolean {
    while (this.#peek() === 0x3b /* ; */) {
      this.#i++;
      this.#ows();
      if (this.#key() === null) return false;
      if (this.#peek() === 0x3d) {
        this.#i++;
        if (this.#bare() === null) return false;
      }
    }
    return true;
  }

  #innerList(): Bare[] | null {
    this.#i++; // (
    const items: Bare[] = [];
    for (;;) {
      while (this.#peek() === 0x20) this.#i++;
      if (this.#peek() === 0x29 /* ) */) {
        this.#i++;
        return items;
      }
      const item = this.#bare();
      if (item === null || !this.#params()) return null;
      items.push(item);
      const c = this.#peek();
      if (c !== 0x20 && c !== 0x29) return null;
    }
  }

  #bare(): Bare | null {
    const c = this.#peek();
    if (c === 0x2d /* - */ || isDigit(c)) return this.#number();
    if (c === 0x22 /* " */) return this.#string();
    if (c === 0x3f /* ? */) {
      const b = this.#s[this.#i + 1];
      if (b !== '0' && b !== '1') return null;
      this.#i += 2;
      return b === '1';
    }
    if (isAlpha(c) || c === 0x2a) {
      const start = this.#i;
      this.#i++;
      while (isTokenChar(this.#peek())) this.#i++;
      return { token: this.#s.slice(start, this.#i) };
    }
    return null;
  }

  /** Integer (≤ 15 digits) or decimal (≤ 12 integer digits, 1–3 fraction digits), RFC 8941 §4.2.4. */
  #number(): number | null {
    const start = this.#i;
    if (this.#peek() === 0x2d) this.#i++;
    const digits = this.#i;
    while (isDigit(this.#peek())) this.#i++;
    const intLen = this.#i - digits;
    if (intLen === 0) return null;
    if (this.#peek() !== 0x2e /* . */) {
      if (intLen > 15) return null;
      return Number(this.#s.slice(start, this.#i));
    }
    if (intLen > 12) return null;
    this.#i++;
    const frac = this.#i;
    while (isDigit(this.#peek())) this.#i++;
    const fracLen = this.#i - frac;
    if (fracLen < 1 || fracLen > 3) return null;
    return Number(this.#s.slice(start, this.#i));
  }

  /** A string: printable ASCII, `\"` and `\\` the only escapes (RFC 8941 §4.2.5). */
  #string(): string | null {
    this.#i++;
    let out = '';
    for (;;) {
      const c = this.#peek();
      if (c === -1) return null;
      this.#i++;
      if (c === 0x22) return out;
      if (c === 0x5c /* \ */) {
        const e = this.#peek();
        if (e !== 0x22 && e !== 0x5c) return null;
        this.#i++;
        out += String.fromCharCode(e);
      } else if (c < 0x20 || c > 0x7e) {
        return null;
      } else {
        out += String.fromCharCode(c);
      }
    }
  }
}
