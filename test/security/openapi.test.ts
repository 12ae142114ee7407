// docs/openapi.yaml documents every API route the server declares, with its method and the access the route declares
// (the operation's `x-scope`), and nothing the server does not have. The routes come from the running server
// (p.routes: every route that declares a scope), so a new route, a changed scope or a removed route fails here until
// the document says so. The YAML is read by its indentation, as the document is written: path keys at 2 spaces,
// methods at 4, `x-scope:` and `responses:` at 6, response codes at 8.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.ts';

const DOC = new URL('../../docs/openapi.yaml', import.meta.url);
const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

interface DocOperation {
  path: string;
  /** Upper case, as Fastify names methods. */
  method: string;
  scope: string | undefined;
  /** The response codes listed ('200', '401', …). */
  responses: string[];
  line: number;
}

/** The operations under `paths:` of an OpenAPI document in this file's block style. */
function parseOperations(yaml: string): DocOperation[] {
  const ops: DocOperation[] = [];
  let inPaths = false;
  let path: string | null = null;
  let op: DocOperation | null = null;
  let inResponses = false;
  for (const [i, raw] of yaml.split('\n').entries()) {
    const l = raw.replace(/\s+$/, '');
    const at = `docs/openapi.yaml:${i + 1}`;
    if (/^\S/.test(l)) {
      inPaths = l === 'paths:';
      path = null;
      op = null;
      continue;
    }
    if (!inPaths || l === '' || /^\s*#/.test(l)) continue;
    let m = /^ {2}(\/\S*):$/.exec(l);
    if (m) {
      path = m[1]!;
      op = null;
      continue;
    }
    m = /^ {4}([a-z]+):/.exec(l);
    if (m) {
      op = null;
      if (path !== null && METHODS.has(m[1]!)) {
        const method = m[1]!.toUpperCase();
        assert.ok(!ops.some((o) => o.path === path && o.method === method), `${at}: ${method} ${path} twice`);
        op = { path, method, scope: undefined, responses: [], line: i + 1 };
        ops.push(op);
      }
      continue;
    }
    if (op === null) continue;
    m = /^ {6}([A-Za-z$-]+):\s*(.*)$/.exec(l);
    if (m) {
      inResponses = m[1] === 'responses';
      if (m[1] === 'x-scope') {
        assert.equal(op.scope, undefined, `${at}: a second x-scope in ${op.method} ${op.path}`);
        op.scope = m[2]!.replace(/^(['"])(.*)\1$/, '$2');
      }
      continue;
    }
    m = /^ {8}'?(\d{3})'?:/.exec(l);
    if (m && inResponses) op.responses.push(m[1]!);
  }
  return ops;
}

/** A path's shape: every parameter (`:id` or `{id}`) as `{}`, so parameter names may differ. */
function shape(url: string): string {
  return url.replace(/:[A-Za-z0-9_]+/g, '{}').replace(/\{[^}/]+\}/g, '{}');
}

/** The live stream actions, one server route each, documented together as /api/live/{id}/{action}. */
const LIVE_ACTIONS = ['start', 'stop', 'shutdown', 'rotate-key'];
const LIVE_ACTION = /^\/api\/live\/:[A-Za-z]+\/([a-z-]+)$/;

/** The documented path (shape) of a server route. */
function documentedAs(url: string): string {
  const m = LIVE_ACTION.exec(url);
  if (m && LIVE_ACTIONS.includes(m[1]!)) return '/api/live/{}/{}';
  return shape(url);
}

describe('docs/openapi.yaml documents every API route with its declared access', () => {
  let p: TestPlatform;
  let ops: DocOperation[];
  before(async () => {
    p = await startTestPlatform();
    ops = parseOperations(readFileSync(DOC, 'utf8'));
  });
  after(() => p.stop());

  /** The server's routes, without the HEAD routes Fastify adds to GET ones. */
  const declared = () =>
    p.routes.filter((r) => r.method !== 'HEAD' || !p.routes.some((g) => g.method === 'GET' && g.url === r.url));

  it('reads the document', () => {
    assert.ok(ops.length >= 60, `only ${ops.length} operations parsed`);
    assert.ok(ops.filter((o) => o.scope !== undefined).length >= 50, 'few operations with an x-scope');
    assert.ok(
      ops.some((o) => o.path === '/api/assets/{id}' && o.method === 'PATCH' && o.scope === 'assets:write'),
      'PATCH /api/assets/{id}',
    );
  });

  it('documents every /api route the server declares, with its method and x-scope', () => {
    const api = declared().filter((r) => r.url.startsWith('/api/'));
    assert.ok(api.length >= 50, `only ${api.length} API routes`);
    const problems: string[] = [];
    for (const r of api) {
      const want = documentedAs(r.url);
      const op = ops.find((o) => o.method === r.method && shape(o.path) === want);
      if (!op) {
        const paths = [...new Set(ops.filter((o) => shape(o.path) === want).map((o) => `${o.method} ${o.path}`))];
        problems.push(`${r.method} ${r.url}: not documented${paths.length ? ` (only ${paths.join(', ')})` : ''}`);
      } else if (op.scope !== r.access) {
        problems.push(
          `${r.method} ${r.url}: x-scope ${op.scope ?? '(none)'} at docs/openapi.yaml:${op.line}, the route declares ${r.access}`,
        );
      }
    }
    assert.deepEqual(problems, []);
  });

  it('has no stale operation: every operation with an x-scope exists on the server with that access', () => {
    const routes = declared();
    const problems: string[] = [];
    for (const op of ops.filter((o) => o.scope !== undefined)) {
      const matches = routes.filter((r) => r.method === op.method && documentedAs(r.url) === shape(op.path));
      const where = `${op.method} ${op.path} (docs/openapi.yaml:${op.line})`;
      if (matches.length === 0) problems.push(`${where}: no such route on the server`);
      for (const r of matches) {
        if (r.access !== op.scope) problems.push(`${where}: x-scope ${op.scope}, ${r.url} declares ${r.access}`);
      }
      if (shape(op.path) === '/api/live/{}/{}') {
        for (const a of LIVE_ACTIONS) {
          if (!matches.some((r) => r.url.endsWith(`/${a}`))) problems.push(`${where}: the server has no ${a} action`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('gives every /api operation an x-scope, and the guarded ones their 401 and 403 answers', () => {
    const problems: string[] = [];
    for (const op of ops.filter((o) => o.path.startsWith('/api/'))) {
      const where = `${op.method} ${op.path} (docs/openapi.yaml:${op.line})`;
      if (op.scope === undefined) problems.push(`${where}: no x-scope`);
      else if (op.scope !== 'public') {
        for (const code of ['401', '403']) if (!op.responses.includes(code)) problems.push(`${where}: no ${code}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
