// Webhooks on a real server: an upload that finishes sends upload.completed, its encode asset.ready, a delete
// asset.deleted — each signed in the Standard Webhooks format (the reference `standardwebhooks` package verifies
// them), and a replay of a delivery with its old timestamp is rejected by the documented check (ours and the
// reference's). Nothing in a delivery carries a credential.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { verify } from '../../src/core/webhooks.ts';
import { startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';

interface Got {
  headers: IncomingHttpHeaders;
  body: string;
}

describe('webhooks from platform events', () => {
  let p: TestPlatform;
  const got: Got[] = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  let hookUrl = '';

  before(async () => {
    p = await startTestPlatform();
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hooks`;
  });
  after(async () => {
    await p.stop();
    receiver.close();
  });

  it('delivers upload.completed, asset.ready and asset.deleted, signed; a stale replay is rejected', async () => {
    const created = await p.api('/api/webhooks', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: hookUrl, events: ['upload.completed', 'asset.ready', 'asset.deleted'] }),
    });
    assert.equal(created.status, 201);
    const { id, secret } = (await created.json()) as { id: string; secret: string };
    assert.match(secret, /^whsec_/);

    const file = readFileSync(await h264Clip({ seconds: 3, width: 320, height: 180 }));
    const up = await p.api('/api/uploads', {
      method: 'POST',
      headers: {
        'tus-resumable': '1.0.0',
        'upload-length': String(file.length),
        'upload-metadata': `filename ${Buffer.from('hook.mp4').toString('base64')}`,
        'content-type': 'application/offset+octet-stream',
      },
      body: file,
    });
    assert.equal(up.status, 201, await up.text());
    const assetId = up.headers.get('smoothcast-asset')!;
    assert.ok(assetId);

    const event = (type: string) =>
      until(`${type} delivered`, () => got.find((g) => JSON.parse(g.body).type === type), 120_000);
    const completed = await event('upload.completed');
    const ready = await event('asset.ready');
    assert.equal(JSON.parse(ready.body).data.id, assetId);
    assert.equal(JSON.parse(completed.body).data.assetId, assetId);
    const del = await p.api(`/api/assets/${assetId}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    await event('asset.deleted');

    const reference = new Webhook(secret);
    for (const g of got) {
      const h = {
        'webhook-id': String(g.headers['webhook-id']),
        'webhook-timestamp': String(g.headers['webhook-timestamp']),
        'webhook-signature': String(g.headers['webhook-signature']),
      };
      assert.doesNotThrow(() => reference.verify(g.body, h), 'the reference verifies it');
      assert.ok(verify(secret, h, g.body), 'our documented check accepts it');
      // A replay ten minutes later: the same bytes and headers, refused for their old timestamp.
      const later = (Number(h['webhook-timestamp']) + 600) * 1000;
      assert.equal(verify(secret, h, g.body, { now: later }), false);
      assert.equal(verify(secret, h, g.body, { now: Number(h['webhook-timestamp']) * 1000 + 1000 }), true);
      assert.throws(() =>
        reference.verify(g.body, { ...h, 'webhook-timestamp': String(Number(h['webhook-timestamp']) - 600) }),
      );
      assert.ok(!g.body.includes(p.token) && !/sc_[A-Za-z0-9_-]{43}|eyJ/.test(g.body), 'no credential in a delivery');
    }
    const log = (await (await p.api(`/api/webhooks/${id}/deliveries`)).json()) as {
      deliveries: { status: string; event: string }[];
    };
    assert.ok(log.deliveries.length >= 3);
    await until(
      'all delivered in the log',
      async () => {
        const l = (await (await p.api(`/api/webhooks/${id}/deliveries`)).json()) as {
          deliveries: { status: string }[];
        };
        return l.deliveries.every((d) => d.status === 'delivered') ? true : undefined;
      },
      30_000,
    );
  });
});
