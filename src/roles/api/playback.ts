// Playback settings and signed playback over HTTP: PATCH an asset's title, policy, encryption and viewer limit;
// sign a playback token for it (the URLs come back with the token in place); manage signing keys (a customer key's
// private half is returned once, so their backend can sign tokens itself); the public player data of an asset.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { PlaybackVerifier } from '../../core/auth/playback-tokens.ts';
import { PLAYBACK_AUDS, type PlaybackAud, type PlaybackSigner } from '../../core/auth/playback-tokens.ts';
import type { Asset, AssetRepository, AssetSettings } from '../../core/db/assets.ts';
import { isValidAssetId } from '../../core/db/assets.ts';
import type { SigningKey, SigningKeyRepository } from '../../core/db/signing-keys.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { actorOf } from './scopes.ts';

export interface PlaybackApiOptions {
  assets: AssetRepository;
  signer: PlaybackSigner;
  verifier: PlaybackVerifier;
  signingKeys: SigningKeyRepository;
  /** The asset's JSON; with `token`, every playback URL carries it. */
  present: (a: Asset, token?: string) => Promise<unknown>;
  /** Forgets what the origin cached of an asset (its access changed). */
  evict: (assetId: string) => void;
  /** Records an action in the audit log (a promise it returns is awaited before the answer). */
  audit: (actor: string, action: string, target: string | null, detail?: unknown) => unknown;
  /** Longest token life this server signs, seconds. */
  maxTokenSeconds: number;
  /** Checks a viewer's token for the player data of an asset (throws as a manifest would); the token or undefined. */
  playerAccess: (req: FastifyRequest, assetId: string) => Promise<string | undefined>;
}

function objectBody(req: FastifyRequest): Record<string, unknown> {
  const b = req.body ?? {};
  if (typeof b !== 'object' || b === null || Array.isArray(b)) {
    throw new SmoothcastError('BAD_REQUEST', 'the body is a JSON object');
  }
  return b as Record<string, unknown>;
}

/** The claims a playback-token request asks for, validated. */
export function tokenRequest(b: Record<string, unknown>, maxSeconds: number) {
  const ttl = b.expiresInSeconds ?? 3600;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 10 || ttl > maxSeconds) {
    throw new SmoothcastError('BAD_REQUEST', `expiresInSeconds is a whole number, 10–${maxSeconds}`);
  }
  const aud = b.aud ?? PLAYBACK_AUDS;
  const list = Array.isArray(aud) ? aud : [aud];
  if (list.length === 0 || !list.every((x) => (PLAYBACK_AUDS as readonly unknown[]).includes(x))) {
    throw new SmoothcastError('BAD_REQUEST', `aud is one or more of ${PLAYBACK_AUDS.join(', ')}`);
  }
  if (b.ip !== undefined && typeof b.ip !== 'string') throw new SmoothcastError('BAD_REQUEST', 'ip is an address');
  if (b.sid !== undefined && (typeof b.sid !== 'string' || !/^[A-Za-z0-9._~:-]{1,128}$/.test(b.sid))) {
    throw new SmoothcastError('BAD_REQUEST', 'sid is 1–128 characters of A–Z a–z 0–9 . _ ~ : -');
  }
  return {
    aud: list as PlaybackAud[],
    expiresInSeconds: ttl,
    ...(typeof b.ip === 'string' ? { ip: b.ip } : {}),
    ...(typeof b.sid === 'string' ? { sid: b.sid } : {}),
  };
}

const presentKey = (k: SigningKey) => ({
  id: k.id,
  kind: k.kind,
  alg: k.alg,
  publicJwk: k.publicJwk,
  createdAt: new Date(k.createdAt).toISOString(),
  revokedAt: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
});

export function registerPlaybackApi(app: FastifyInstance, o: PlaybackApiOptions): void {
  const mustGet = async (raw: string): Promise<Asset> => {
    if (!isValidAssetId(raw)) throw new SmoothcastError('INVALID_ID', `invalid asset id ${JSON.stringify(raw)}`);
    const a = await o.assets.get(raw);
    if (!a) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${raw}`);
    return a;
  };

  app.patch<{ Params: { id: string } }>('/api/assets/:id', { config: { scope: 'assets:write' } }, async (req) => {
    const a = await mustGet(req.params.id);
    const b = objectBody(req);
    const known = new Set(['title', 'playbackPolicy', 'encryption', 'maxViewers']);
    for (const k of Object.keys(b)) if (!known.has(k)) throw new SmoothcastError('BAD_REQUEST', `unknown field ${k}`);
    if (a.liveStreamId && b.encryption !== undefined && b.encryption !== 'none') {
      throw new SmoothcastError(
        'ENCRYPTION_UNSUPPORTED',
        'a live event and its archive are served clear: protect them with a signed playback policy',
      );
    }
    const updated = await o.assets.updateSettings(a.id, b as AssetSettings);
    o.evict(a.id);
    await o.audit(actorOf(req), 'asset.updated', a.id, b);
    return await o.present(updated);
  });

  app.post<{ Params: { id: string } }>(
    '/api/assets/:id/playback-tokens',
    { config: { scope: 'playback:sign' } },
    async (req, reply) => {
      const a = await mustGet(req.params.id);
      const t = await o.signer.sign({ sub: a.id, ...tokenRequest(objectBody(req), o.maxTokenSeconds) });
      reply.header('cache-control', 'no-store');
      const json = (await o.present(a, t.token)) as { playback: unknown };
      return reply
        .code(201)
        .send({ token: t.token, expiresAt: new Date(t.expiresAt).toISOString(), playback: json.playback });
    },
  );

  app.get('/api/signing-keys', { config: { scope: 'admin' } }, async () => ({
    keys: (await o.signingKeys.list()).map(presentKey),
  }));

  // A key for the customer's own backend: its private key (PKCS#8 PEM) is in this answer and nowhere else.
  app.post('/api/signing-keys', { config: { scope: 'admin' } }, async (req, reply) => {
    const k = await o.signingKeys.createCustomerKey();
    // Its tokens work at once here (other processes see the key at their next key refresh or unknown kid).
    o.verifier.invalidate();
    await o.audit(actorOf(req), 'signing-key.created', k.id);
    reply.header('cache-control', 'no-store');
    return reply.code(201).send({
      id: k.id,
      alg: k.alg,
      privateKey: k.privateKeyPem,
      publicJwk: k.publicJwk,
      createdAt: new Date(k.createdAt).toISOString(),
    });
  });

  // The server's own signing key (POST /api/assets/:id/playback-tokens) rotates: new tokens use the new key, the
  // old one's stay valid until it is revoked.
  app.post('/api/signing-keys/rotate', { config: { scope: 'admin' } }, async (req, reply) => {
    const k = await o.signer.rotate();
    o.verifier.invalidate();
    await o.audit(actorOf(req), 'signing-key.rotated', k.id);
    return reply.code(201).send({ id: k.id });
  });

  app.delete<{ Params: { id: string } }>(
    '/api/signing-keys/:id',
    { config: { scope: 'admin' } },
    async (req, reply) => {
      const k = await o.signingKeys.revoke(req.params.id);
      // Its tokens stop working at once: the verifier forgets what it had verified.
      o.verifier.invalidate();
      await o.audit(actorOf(req), 'signing-key.revoked', k.id);
      return reply.code(204).send();
    },
  );

  // What the watch page needs to play an asset, for anyone who may play it (no account): public assets, and
  // signed ones with a valid token (then every URL in it carries that token).
  app.get<{ Params: { id: string } }>('/v/:id/player.json', async (req, reply) => {
    const a = await mustGet(req.params.id);
    const token = await o.playerAccess(req, a.id);
    reply.header('cache-control', token ? 'private, no-store' : 'no-cache');
    return await o.present(a, token);
  });
}
