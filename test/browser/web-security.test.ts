// The web app's sign-in and access pages in a real browser (Debian's chromium driven by playwright-core): the first
// run with the setup code from the server log, signing out and in (a wrong password said in plain words, back to
// the page asked for), the users and API tokens pages (create, use, revoke), webhooks (secret once, a test event
// in the deliveries log), then a video made signed on its watch page: a visitor without a token is refused, a copied
// signed link plays in a fresh browser (and as an embed), encrypted videos play (ClearKey, AES-128 HLS), and a
// viewer over the limit reads why.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { ADMIN_PASSWORD, importSettled, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';
import { openBrowser, openPage, SHOTS } from './pages.ts';

const VIEWPORT = { width: 1280, height: 900 };
/** What the browser logs for an answer the test asked for (a refused login, a 403 without a token, a 429). */
const EXPECTED_REFUSAL = /Failed to load resource: the server responded with a status of (401|403|429)/;

describe('web app sign-in, admin pages and signed playback in chromium', () => {
  /** The platform of every test but the first run: its admin is "admin" with ADMIN_PASSWORD. */
  let p: TestPlatform;
  let browser: Browser;
  /** The admin's browser (its session cookie, from signing in on /login). */
  let admin: BrowserContext;
  let asset: AssetJson;
  const consoleErrors: string[] = [];
  const fresh: BrowserContext[] = [];

  const open = (context: BrowserContext, path: string, base = p.url): Promise<Page> =>
    openPage(context, base, path, VIEWPORT, consoleErrors);
  /** A browser with no cookies: a visitor. */
  const visitor = async () => {
    const c = await browser.newContext();
    fresh.push(c);
    return c;
  };
  const playsPast = (page: Page, seconds: number) =>
    page.waitForFunction((s) => (document.querySelector('video')?.currentTime ?? 0) > s, seconds, {
      timeout: 60_000,
    });
  const signIn = async (page: Page, name: string, password: string) => {
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  };
  /** The API as the platform's admin (its API token). */
  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await p.api(path, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    assert.ok(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
    return (r.status === 204 ? null : await r.json()) as T;
  };

  before(async () => {
    // Viewer slots of closed pages free up soon (the viewer limit test), but not before the editor has looked: the
    // watch page's player buffers the whole 8 s clip at once and then asks for nothing, so a viewer still watching
    // is counted only until it has been idle this long (5 s was too short on a loaded CI box: "0 watching").
    p = await startTestPlatform({ encode: { preset: 'ultrafast' }, security: { playbackSessionIdleSeconds: 20 } });
    asset = await importSettled(p, await h264Clip({ seconds: 8, width: 640, height: 360 }));
    assert.equal(asset.status, 'ready');
    ({ browser, context: admin } = await openBrowser());
  });

  after(async () => {
    for (const c of fresh) await c.close().catch(() => {});
    await browser?.close();
    await p?.stop();
  });

  it('first run: any page goes to /setup, a wrong code is refused, the code from the log makes the admin', async () => {
    const first = await startTestPlatform({}, { noAdmin: true });
    try {
      const context = await visitor();
      const page = await open(context, '/library', first.url);
      await page.waitForURL(`${first.url}/setup`);
      assert.ok(first.setupCode, 'the platform has a setup code while no user exists');
      await page.getByLabel('Setup code').fill('not-the-code');
      await page.getByLabel('Admin name').fill('owner');
      await page.getByLabel('New password', { exact: true }).fill(ADMIN_PASSWORD);
      await page.getByLabel('New password again').fill(ADMIN_PASSWORD);
      await page.getByRole('button', { name: 'Create the admin account' }).click();
      await page.getByRole('alert').filter({ hasText: 'Wrong or used setup code' }).waitFor();
      // Passwords that differ are caught before anything is sent.
      await page.getByLabel('Setup code').fill(first.setupCode!);
      await page.getByLabel('New password again').fill('something else');
      await page.getByRole('button', { name: 'Create the admin account' }).click();
      assert.equal(
        await page.getByLabel('New password again').evaluate((i) => (i as HTMLInputElement).validity.valid),
        false,
      );
      await page.getByLabel('New password again').fill(ADMIN_PASSWORD);
      await page.getByRole('button', { name: 'Create the admin account' }).click();
      await page.waitForURL(`${first.url}/`);
      const header = page.locator('header.top');
      await header.getByRole('button', { name: 'Sign out' }).waitFor();
      assert.match((await header.locator('.who').textContent()) ?? '', /owner\s*admin/);
      for (const link of ['Users', 'API tokens', 'Webhooks']) await header.getByRole('link', { name: link }).waitFor();
      assert.equal(first.setupCode, null, 'the code is used up');
      // The upload page is there for the new admin, and /setup is not offered any more.
      await page.locator('#file-input').waitFor({ state: 'attached' });
      await page.goto(`${first.url}/setup`);
      await page.getByText('This server is set up already').waitFor();
      await page.close();
    } finally {
      await first.stop();
    }
  });

  it('a page asked for goes to /login; a wrong password is said in plain words; signing in goes back; signing out', async () => {
    const page = await open(admin, '/library');
    await page.waitForURL(`${p.url}/login?next=%2Flibrary`);
    await signIn(page, 'admin', 'wrong password');
    await page.getByRole('alert').filter({ hasText: 'Wrong name or password.' }).waitFor();
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await page.waitForURL(`${p.url}/library`);
    await page.locator(`li.asset[data-id="${asset.id}"]`).waitFor();
    // Signing out ends the session: the next page asks again.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${p.url}/login`);
    await page.goto(`${p.url}/tokens`);
    await page.waitForURL(`${p.url}/login?next=%2Ftokens`);
    await signIn(page, 'admin', ADMIN_PASSWORD);
    await page.waitForURL(`${p.url}/tokens`);
    await page.locator('form.add-token').waitFor();
    await page.close();
    // Past the failed-login limit (5 for a name), the page says to wait.
    const guesser = await open(await visitor(), '/login');
    for (let i = 0; i < 6; i++) {
      await signIn(guesser, 'ghost', `guess ${i}`);
      await guesser.getByRole('button', { name: 'Sign in' }).and(guesser.locator(':enabled')).waitFor();
    }
    await guesser
      .getByRole('alert')
      .filter({ hasText: /^Too many attempts: wait \d+ minutes?, then try again\.$/ })
      .waitFor();
    await guesser.close();
  });

  it('users: adds an editor, changes the role, resets the password (which then signs in), deletes', async () => {
    const page = await open(admin, '/users');
    const form = page.locator('form.add-user');
    await form.getByLabel('Name').fill('editor1');
    await form.getByLabel('Password').fill('first password');
    await form.getByLabel('Role').selectOption('editor');
    await form.getByRole('button', { name: 'Add user' }).click();
    const row = page.locator('tr[data-name="editor1"]');
    await row.waitFor();
    await row.getByLabel('Role of editor1').selectOption('viewer');
    await page.getByText('editor1 is now viewer.').waitFor();
    const users = await api<{ users: { name: string; role: string }[] }>('GET', '/api/users');
    assert.equal(users.users.find((u) => u.name === 'editor1')?.role, 'viewer');

    await row.getByRole('button', { name: 'Reset the password of editor1' }).click();
    await row.getByLabel('New password for editor1').fill('second password');
    await row.getByRole('button', { name: 'Set password' }).click();
    await page.getByText('New password set for editor1').waitFor();
    // The new password signs in (in another browser), as a viewer: no admin links, no upload.
    const other = await visitor();
    const login = await open(other, '/login');
    await signIn(login, 'editor1', 'second password');
    await login.waitForURL(`${p.url}/`);
    assert.match((await login.locator('header .who').textContent()) ?? '', /editor1\s*viewer/);
    assert.equal(await login.locator('header').getByRole('link', { name: 'Users' }).count(), 0);
    await login.getByText('Your account cannot upload videos').waitFor();
    await login.goto(`${p.url}/users`);
    await login.getByText('Only admins can see this page.').waitFor();
    // They change their password on their account page and stay signed in.
    await login.goto(`${p.url}/account`);
    await login.getByLabel('Current password').fill('wrong one');
    await login.getByLabel('New password', { exact: true }).fill('third password');
    await login.getByLabel('New password again').fill('third password');
    await login.getByRole('button', { name: 'Change password' }).click();
    await login.getByRole('alert').filter({ hasText: 'The current password is wrong.' }).waitFor();
    await login.getByLabel('Current password').fill('second password');
    await login.getByRole('button', { name: 'Change password' }).click();
    await login.getByText('Password changed.').waitFor();
    assert.match((await login.locator('header .who').textContent()) ?? '', /editor1/);
    const loginAs = (password: string) =>
      fetch(`${p.url}/api/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'editor1', password }),
      });
    assert.equal((await loginAs('second password')).status, 401);
    assert.equal((await loginAs('third password')).status, 200);
    await login.close();

    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: 'Delete editor1' }).click();
    await row.waitFor({ state: 'detached' });
    await page.getByText('Deleted editor1.').waitFor();
    await page.close();
  });

  it('API tokens: created with scopes and an expiry, the secret shown once, usable as a bearer, revoked', async () => {
    const page = await open(admin, '/tokens');
    const form = page.locator('form.add-token');
    await form.getByLabel('Name').fill('ci reader');
    await form.getByRole('checkbox', { name: /assets:read/ }).check();
    await form.getByLabel('Expires').selectOption({ label: '1 day' });
    await form.getByRole('button', { name: 'Create token' }).click();
    const secretBox = page.locator('section.secret');
    await secretBox.waitFor();
    assert.match((await secretBox.textContent()) ?? '', /shown only this once/);
    const secret = await secretBox.locator('input[data-field="secret"]').inputValue();
    assert.ok(secret.length > 20, secret);
    const row = page.locator('tr[data-name="ci reader"]');
    await row.waitFor();
    assert.equal(await row.getAttribute('data-state'), 'active');
    assert.match((await row.locator('.scopes').textContent()) ?? '', /^assets:read$/);
    await page.screenshot({ path: join(SHOTS, 'tokens.png') });
    const cells = await row.locator('td').allTextContents();
    assert.notEqual(cells[2], 'Never', 'an expiry date');
    assert.equal(cells[3], 'Never', 'not used yet');
    const bearer = () => fetch(`${p.url}/api/assets`, { headers: { authorization: `Bearer ${secret}` } });
    assert.equal((await bearer()).status, 200);
    // Shown once: not after a reload; the use is listed.
    await page.reload();
    await row.waitFor();
    assert.equal(await page.locator('section.secret').count(), 0);
    assert.notEqual((await row.locator('td').allTextContents())[3], 'Never', 'last used');

    page.once('dialog', (d) => void d.accept());
    await row.getByRole('button', { name: 'Revoke ci reader' }).click();
    await page.getByText('Revoked ci reader.').waitFor();
    await page.locator('tr[data-name="ci reader"][data-state="revoked"]').waitFor();
    assert.equal((await bearer()).status, 401);
    await page.close();
  });

  it('webhooks: added with events, the signing secret once, a test event delivered and logged, deleted', async () => {
    const received: string[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        received.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/hook`;
    try {
      const page = await open(admin, '/webhooks');
      const form = page.locator('form.add-webhook');
      await form.getByLabel('URL').fill(hookUrl);
      await form.getByRole('checkbox', { name: /asset\.ready/ }).check();
      await form.getByRole('button', { name: 'Add webhook' }).click();
      await page.locator('section.secret input[data-field="secret"]').waitFor();
      const hook = page.locator('li.hook').filter({ hasText: hookUrl });
      await hook.waitFor();
      await hook.getByRole('button', { name: `Send a test event to ${hookUrl}` }).click();
      await until('the test event at the receiver', () => (received.length ? true : undefined), 30_000);
      await until(
        'the delivery logged as delivered',
        async () => {
          await hook.getByRole('button', { name: `Refresh the deliveries to ${hookUrl}` }).click();
          return (await hook.locator('tr[data-status="delivered"]').count()) ? true : undefined;
        },
        30_000,
      );
      page.once('dialog', (d) => void d.accept());
      await hook.getByRole('button', { name: `Delete the webhook ${hookUrl}` }).click();
      await hook.waitFor({ state: 'detached' });
      await page.close();
    } finally {
      receiver.close();
    }
  });

  it('makes the video signed on its watch page: no token is refused, a copied signed link plays in a fresh browser', async () => {
    const page = await open(admin, `/watch/${asset.id}`);
    const access = page.locator('section.access');
    await access.getByRole('radio', { name: /Signed/ }).check();
    await access.getByRole('button', { name: 'Save' }).click();
    // The page loads again with the new policy: the badge, and it plays with the admin's own token.
    await page.locator('h1 .badge.signed').waitFor();
    assert.equal((await api<AssetJson>('GET', `/api/assets/${asset.id}`)).playbackPolicy, 'signed');
    await page.locator('button.play').click();
    await playsPast(page, 1);

    // A visitor without a token.
    const nobody = await open(await visitor(), `/watch/${asset.id}`);
    await nobody.getByRole('alert').filter({ hasText: 'This video is private' }).waitFor();
    await nobody.close();

    await admin.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: p.url });
    await page.getByRole('button', { name: 'Copy signed link' }).click();
    const linkField = page.locator('input[data-field="signed-link"]');
    await page.waitForFunction(
      () => (document.querySelector('input[data-field="signed-link"]') as HTMLInputElement | null)?.value,
    );
    const link = await linkField.inputValue();
    assert.match(link, new RegExp(`^${p.url}/watch/${asset.id}\\?token=.+`));
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link);
    await page.locator('section.access').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'access.png') });
    await page.close();

    const guest = await open(await visitor(), link.slice(p.url.length));
    await guest.locator('button.play').click();
    await playsPast(guest, 2);
    assert.equal(await guest.locator('.message').textContent(), '');
    await guest.close();
    // As an embed too.
    const embed = await open(await visitor(), `${link.slice(p.url.length)}&embed`);
    await embed.locator('button.play').click();
    await playsPast(embed, 1);
    await embed.close();
  });

  it('plays encrypted videos from a signed link: CENC and CBCS through ClearKey, AES-128 over HLS', async () => {
    for (const encryption of ['cenc', 'cbcs', 'aes-128'] as const) {
      const page = await open(admin, `/watch/${asset.id}`);
      const access = page.locator('section.access');
      await access.getByLabel('Encryption').selectOption(encryption);
      await access.getByRole('button', { name: 'Save' }).click();
      await page.locator(`h1 .badge.encrypted[data-encryption="${encryption}"]`).waitFor();
      await page.close();
      // A visitor with a signed link, in a browser of its own.
      const token = (await api<{ token: string }>('POST', `/api/assets/${asset.id}/playback-tokens`, {})).token;
      const guest = await open(await visitor(), `/watch/${asset.id}?token=${token}`);
      await guest.locator('button.play').click();
      await playsPast(guest, 2);
      assert.equal(await guest.locator('.message').textContent(), '', encryption);
      if (encryption !== 'aes-128') {
        assert.equal(await guest.evaluate(() => !!document.querySelector('video')?.mediaKeys), true, 'through EME');
      }
      await guest.close();
    }
    await api('PATCH', `/api/assets/${asset.id}`, { encryption: 'none' });
  });

  it('a viewer over the limit reads that the video is full', async () => {
    const page = await open(admin, `/watch/${asset.id}`);
    const access = page.locator('section.access');
    await access.getByLabel('Viewer limit').fill('1');
    await access.getByRole('button', { name: 'Save' }).click();
    await access.getByText('Saved.').waitFor();
    assert.equal((await api<AssetJson>('GET', `/api/assets/${asset.id}`)).maxViewers, 1);
    await page.close();
    // The pages before played it too: their slots free up once idle.
    await until(
      'no viewers',
      async () => ((await api<AssetJson>('GET', `/api/assets/${asset.id}`)).viewers === 0 ? true : undefined),
      60_000,
    );
    const link = async () =>
      (await api<{ token: string }>('POST', `/api/assets/${asset.id}/playback-tokens`, {})).token;

    const first = await open(await visitor(), `/watch/${asset.id}?token=${await link()}`);
    await first.locator('button.play').click();
    await playsPast(first, 1);
    const second = await open(await visitor(), `/watch/${asset.id}?token=${await link()}`);
    await second
      .getByRole('alert')
      .filter({ hasText: 'This video has reached its viewer limit. Try again in a minute.' })
      .waitFor({ timeout: 60_000 });
    // Editors see who watches.
    const editor = await open(admin, `/watch/${asset.id}`);
    assert.match((await editor.locator('section.access .viewers').textContent()) ?? '', /^[12] watching \(limit 1\)$/);
    await editor.goto(`${p.url}/library`);
    const card = editor.locator(`li.asset[data-id="${asset.id}"]`);
    await card.locator('.badge.signed').waitFor();
    assert.match((await card.locator('.viewers').textContent()) ?? '', /watching \(limit 1\)/);
    for (const pg of [first, second, editor]) await pg.close();
  });

  it('logged no console errors but the refusals it asked for', () => {
    assert.deepEqual(
      consoleErrors.filter((e) => !EXPECTED_REFUSAL.test(e)),
      [],
    );
  });
});
