// Encryption on the fly, at the origin: the stored CMAF files stay clear; each request's segment is encrypted from
// them (AES-128 whole segment for HLS; CENC `cenc`/`cbcs` sample encryption for DASH and HLS SAMPLE-AES), with
// deterministic IVs so every viewer gets the same bytes (one ETag, cacheable by anyone). Recently encrypted
// segments are kept in a bounded cache, so a hot segment is encrypted once.
//
// Keys: one random content key per asset (stored wrapped by the master key); each encode revision uses a key and
// KID derived from it (HMAC-SHA256 with the rev), so a re-encode never reuses an IV under the same key.
import { createHmac } from 'node:crypto';
import { type ContentKey, newContentKey, unwrapKey, wrapKey } from '../../core/content-keys.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { encryptSegment as aesSegment, segmentIv } from '../../media/crypto/aes128.ts';
import {
  type CencParams,
  type CencScheme,
  encryptSegment as cencSegment,
  encryptInit,
  type TrackInfo,
  trackInfo,
} from '../../media/crypto/cenc.ts';
import { kidUuid, playreadyObject, psshBox, SYSTEM_IDS, widevinePsshData } from '../../media/crypto/pssh.ts';

export type Encryption = 'none' | 'aes-128' | 'cbcs' | 'cenc';

export interface KeyStore {
  get(id: string): Promise<{ contentKey: string | null } | null>;
  setContentKeyOnce(id: string, wrapped: string): Promise<string>;
}

export interface DrmServers {
  widevine?: string;
  playready?: string;
}

/** Per-rendition IV tag (one byte): video v0… → 0…, audio a0… → 128…; distinct under one key. */
export function ivTag(rid: string): number {
  const n = Number(rid.slice(1));
  return (rid.startsWith('a') ? 128 : 0) + (n & 127);
}

export class OnTheFly {
  private readonly master: Buffer;
  private readonly store: KeyStore;
  private readonly drm: DrmServers;
  private readonly keys = new Map<string, ContentKey>();
  private readonly inits = new Map<string, { bytes: Buffer; info: TrackInfo }>();
  private readonly segs = new Map<string, Buffer>();
  private segBytes = 0;
  private readonly maxBytes: number;

  constructor(o: { master: Buffer; store: KeyStore; cacheBytes: number; drm?: DrmServers }) {
    this.master = o.master;
    this.store = o.store;
    this.maxBytes = o.cacheBytes;
    this.drm = o.drm ?? {};
  }

  /** The key and KID of an asset's encode revision (its content key made on first use). */
  async key(assetId: string, rev: string): Promise<ContentKey> {
    const k = `${assetId}/${rev}`;
    const hit = this.keys.get(k);
    if (hit) return hit;
    const a = await this.store.get(assetId);
    if (!a) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${assetId}`);
    const wrapped =
      a.contentKey ?? (await this.store.setContentKeyOnce(assetId, wrapKey(this.master, assetId, newContentKey())));
    const base = unwrapKey(this.master, assetId, wrapped);
    const derive = (secret: Buffer, label: string) =>
      createHmac('sha256', secret).update(`smoothcast:${label}:${rev}`).digest().subarray(0, 16);
    const key = { kid: derive(base.kid, 'kid'), key: derive(base.key, 'key') };
    if (this.keys.size > 10_000) this.keys.clear();
    this.keys.set(k, key);
    return key;
  }

  /** Forgets an asset's keys and encrypted bytes (deleted, re-encoded or its encryption changed). */
  evict(assetId: string): void {
    for (const k of this.keys.keys()) if (k.startsWith(`${assetId}/`)) this.keys.delete(k);
    for (const k of this.inits.keys()) if (k.startsWith(`${assetId}/`)) this.inits.delete(k);
    for (const [k, v] of this.segs) {
      if (k.startsWith(`${assetId}/`)) {
        this.segs.delete(k);
        this.segBytes -= v.length;
      }
    }
  }

  private async params(scheme: CencScheme, assetId: string, rev: string, rid: string): Promise<CencParams> {
    const { kid, key } = await this.key(assetId, rev);
    return { scheme, kid, key, ivTag: ivTag(rid) };
  }

  /** The PSSH boxes put into an encrypted init: the W3C common one (ClearKey), and DRM-ready ones from config. */
  pssh(scheme: CencScheme, kid: Buffer): Buffer[] {
    const out = [psshBox(SYSTEM_IDS.common, [kid])];
    if (this.drm.widevine) out.push(psshBox(SYSTEM_IDS.widevine, [], widevinePsshData([kid], scheme)));
    if (this.drm.playready && scheme === 'cenc') {
      out.push(psshBox(SYSTEM_IDS.playready, [], playreadyObject(kid, this.drm.playready, scheme)));
    }
    return out;
  }

  /**
   * The init segment as served: clear for aes-128 (and none), encrypted sample entries for cenc/cbcs. `clear` is
   * read only when the encrypted init is not cached yet.
   */
  async init(enc: Encryption, assetId: string, rev: string, rid: string, clear: () => Promise<Buffer>) {
    if (enc !== 'cenc' && enc !== 'cbcs') return clear();
    return (await this.initEntry(enc, assetId, rev, rid, clear)).bytes;
  }

  private async initEntry(scheme: CencScheme, assetId: string, rev: string, rid: string, read: () => Promise<Buffer>) {
    const k = `${assetId}/${rev}/${rid}/${scheme}`;
    let e = this.inits.get(k);
    if (!e) {
      const clear = await read();
      const p = await this.params(scheme, assetId, rev, rid);
      e = { bytes: encryptInit(clear, p, this.pssh(scheme, p.kid)), info: trackInfo(clear) };
      if (this.inits.size > 10_000) this.inits.clear();
      this.inits.set(k, e);
    }
    return e;
  }

  /** Segment n as served, encrypted from its clear bytes (the clear init is needed for cenc/cbcs). */
  segment(
    enc: Exclude<Encryption, 'none'>,
    assetId: string,
    rev: string,
    rid: string,
    n: number,
    clear: () => Promise<Buffer>,
    clearInit: () => Promise<Buffer>,
  ): Promise<Buffer> | Buffer {
    const k = `${assetId}/${rev}/${rid}/${n}/${enc}`;
    const hit = this.segs.get(k);
    if (hit) {
      this.segs.delete(k);
      this.segs.set(k, hit);
      return hit;
    }
    return (async () => {
      const seg = await clear();
      let out: Buffer;
      if (enc === 'aes-128') out = aesSegment(seg, (await this.key(assetId, rev)).key, segmentIv(n));
      else {
        // The track facts come from the init, parsed once per rendition (read only on the first miss).
        const e = await this.initEntry(enc, assetId, rev, rid, clearInit);
        out = cencSegment(seg, e.info, await this.params(enc, assetId, rev, rid), n);
      }
      this.remember(k, out);
      return out;
    })();
  }

  private remember(k: string, b: Buffer): void {
    if (b.length > this.maxBytes / 4) return;
    this.segs.set(k, b);
    this.segBytes += b.length;
    for (const [key, v] of this.segs) {
      if (this.segBytes <= this.maxBytes) break;
      this.segs.delete(key);
      this.segBytes -= v.length;
    }
  }

  /**
   * The EXT-X-KEY line of a media playlist (after EXT-X-MAP, so the init stays clear): AES-128 with the key URI;
   * SAMPLE-AES (cbcs) / SAMPLE-AES-CTR (cenc) for EME players with KEYFORMAT org.w3.clearkey and the KID as a data
   * URI (hls.js), the licence URL being the player's configuration.
   */
  async hlsKeyLine(enc: Exclude<Encryption, 'none'>, assetId: string, rev: string, keyUri: string): Promise<string> {
    if (enc === 'aes-128') return `#EXT-X-KEY:METHOD=AES-128,URI="${keyUri}"`;
    const { kid } = await this.key(assetId, rev);
    const method = enc === 'cbcs' ? 'SAMPLE-AES' : 'SAMPLE-AES-CTR';
    return `#EXT-X-KEY:METHOD=${method},URI="data:text/plain;base64,${kid.toString('base64')}",KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"`;
  }

  /** ContentProtection elements of every AdaptationSet of a cenc/cbcs MPD (ISO/IEC 23009-1 §5.8.4.1, DASH-IF IOP). */
  async contentProtection(scheme: CencScheme, assetId: string, rev: string, licenseUrl: string): Promise<string[]> {
    const { kid } = await this.key(assetId, rev);
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    const i = '      ';
    const out = [
      `${i}<ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="${scheme}" cenc:default_KID="${kidUuid(kid)}"/>`,
      `${i}<ContentProtection schemeIdUri="urn:uuid:${SYSTEM_IDS.clearkey}" value="ClearKey1.0">`,
      `${i}  <dashif:Laurl>${esc(licenseUrl)}</dashif:Laurl>`,
      `${i}</ContentProtection>`,
    ];
    // The W3C common-system PSSH stays in the init segment only: as a ContentProtection of its own, dash.js 5.2
    // prefers it and hands the pssh box to ClearKey as "keyids" init data, which Chromium rejects.
    if (this.drm.widevine) {
      out.push(
        `${i}<ContentProtection schemeIdUri="urn:uuid:${SYSTEM_IDS.widevine}" value="Widevine">`,
        `${i}  <cenc:pssh>${psshBox(SYSTEM_IDS.widevine, [], widevinePsshData([kid], scheme)).toString('base64')}</cenc:pssh>`,
        `${i}  <dashif:Laurl>${esc(this.drm.widevine)}</dashif:Laurl>`,
        `${i}</ContentProtection>`,
      );
    }
    if (this.drm.playready && scheme === 'cenc') {
      out.push(
        `${i}<ContentProtection schemeIdUri="urn:uuid:${SYSTEM_IDS.playready}" value="MSPR 2.0">`,
        `${i}  <cenc:pssh>${psshBox(SYSTEM_IDS.playready, [], playreadyObject(kid, this.drm.playready, scheme)).toString('base64')}</cenc:pssh>`,
        `${i}  <dashif:Laurl>${esc(this.drm.playready)}</dashif:Laurl>`,
        `${i}</ContentProtection>`,
      );
    }
    return out;
  }

  /**
   * A W3C ClearKey licence (EME §9.1.4): the keys asked for that belong to this asset's revision; unknown KIDs are
   * left out. Request `{"kids":["<base64url>"],"type":"temporary"}`.
   */
  async clearKeyLicense(assetId: string, rev: string, request: unknown): Promise<{ keys: object[]; type: string }> {
    const kids = (request as { kids?: unknown })?.kids;
    if (!Array.isArray(kids) || kids.length === 0 || kids.length > 16 || !kids.every((k) => typeof k === 'string')) {
      throw new SmoothcastError('BAD_REQUEST', 'a ClearKey licence request is {"kids":["<base64url KID>"]}');
    }
    const { kid, key } = await this.key(assetId, rev);
    const want = kid.toString('base64url');
    const keys = (kids as string[])
      .filter((k) => k.replace(/=+$/, '') === want)
      .map(() => ({ kty: 'oct', kid: want, k: key.toString('base64url') }));
    if (keys.length === 0) throw new SmoothcastError('KEY_NOT_FOUND', 'none of these key ids belongs to this media');
    return { keys, type: 'temporary' };
  }
}
