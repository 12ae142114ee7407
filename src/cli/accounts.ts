// `smoothcast user …` and `smoothcast token …`: accounts and API tokens, on the data folder directly (whoever can
// read the data folder is its administrator already), so the first admin and a first token need no server.
//   user add NAME [--admin | --role admin|editor|viewer] --password-stdin     user ls [--json]
//   token create --name N --scopes S,S [--expires 30d] [--json]              token ls [--json]   token revoke ID
import type { Config } from '../core/config.ts';
import type { Role } from '../core/db/accounts.ts';
import { SmoothcastError } from '../core/errors.ts';
import { isScope, ROLES, SCOPES } from '../roles/api/scopes.ts';
import { openData } from '../roles/server.ts';
import type { Cli } from './main.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of process.stdin) {
    n += (c as Buffer).length;
    if (n > 4096) throw new SmoothcastError('BAD_REQUEST', 'a password is at most 1024 bytes');
    chunks.push(c as Buffer);
  }
  // One line: the trailing newline of `echo` or a file is not part of the password.
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/** `30d`, `12h`, `90m`, `3600s` or a bare number of seconds → seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d{1,9})([smhdy]?)$/.exec(s.trim());
  if (!m) throw new SmoothcastError('BAD_REQUEST', `--expires ${s}: use e.g. 30d, 12h, 90m or seconds`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400, y: 365 * 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd' | 'y'];
  return Number(m[1]) * unit;
}

export async function userCommand(config: Config, cli: Cli): Promise<number> {
  const [sub, name] = cli.positionals;
  const { db, accounts } = await openData(config);
  try {
    if (sub === 'add' && name) {
      const role = (cli.values.admin ? 'admin' : (cli.values.role ?? 'viewer')) as Role;
      if (!ROLES.includes(role)) throw new SmoothcastError('BAD_REQUEST', `--role is one of ${ROLES.join(', ')}`);
      if (!cli.values['password-stdin']) {
        throw new SmoothcastError('BAD_REQUEST', 'give the password on standard input with --password-stdin');
      }
      const user = await accounts.addUser(name, await readStdin(), role);
      await accounts.audit('cli', 'user.created', user.id, { name: user.name, role });
      if (cli.values.json) console.log(JSON.stringify(user));
      else console.log(`added ${user.role} ${user.name} (${user.id})`);
      return 0;
    }
    if (sub === 'ls') {
      const users = await accounts.listUsers();
      if (cli.values.json) console.log(JSON.stringify({ users }));
      else for (const u of users) console.log(`${u.id}  ${u.role.padEnd(6)}  ${u.name}`);
      return 0;
    }
    console.error('usage: smoothcast user add NAME [--admin | --role ROLE] --password-stdin | user ls [--json]');
    return 2;
  } finally {
    await db.close();
  }
}

export async function tokenCommand(config: Config, cli: Cli): Promise<number> {
  const [sub, id] = cli.positionals;
  const { db, accounts } = await openData(config);
  try {
    if (sub === 'create') {
      const name = typeof cli.values.name === 'string' ? cli.values.name : '';
      const scopes = String(cli.values.scopes ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (!name || scopes.length === 0 || !scopes.every(isScope)) {
        throw new SmoothcastError('BAD_REQUEST', `--name N --scopes S,S with scopes from: ${SCOPES.join(', ')}`);
      }
      const expires = typeof cli.values.expires === 'string' ? parseDuration(cli.values.expires) : null;
      const { token, secret } = await accounts.createToken({
        name,
        scopes,
        userId: null,
        expiresAt: expires === null ? null : Date.now() + expires * 1000,
      });
      await accounts.audit('cli', 'token.created', token.id, { name, scopes });
      if (cli.values.json) console.log(JSON.stringify({ ...token, secret }));
      else {
        console.log(secret);
        console.error(
          `token ${token.id} "${name}" (${scopes.join(', ')})${token.expiresAt ? `, expires ${new Date(token.expiresAt).toISOString()}` : ''}: shown once, store it now`,
        );
      }
      return 0;
    }
    if (sub === 'ls') {
      const tokens = await accounts.listTokens();
      if (cli.values.json) console.log(JSON.stringify({ tokens }));
      else {
        for (const t of tokens) {
          const state = t.revokedAt ? 'revoked' : t.expiresAt && t.expiresAt < Date.now() ? 'expired' : 'active';
          console.log(`${t.id}  ${state.padEnd(7)}  ${t.name}  ${t.scopes.join(',')}`);
        }
      }
      return 0;
    }
    if (sub === 'revoke' && id) {
      const t = await accounts.revokeToken(id);
      await accounts.audit('cli', 'token.revoked', t.id, { name: t.name });
      console.log(`revoked ${t.id}`);
      return 0;
    }
    console.error(
      'usage: smoothcast token create --name N --scopes S,S [--expires 30d] [--json] | token ls | token revoke ID',
    );
    return 2;
  } finally {
    await db.close();
  }
}

/** The API token a command sends to a server: --token, else $SMOOTHCAST_TOKEN. */
export function cliToken(cli: Cli): string | undefined {
  const t = typeof cli.values.token === 'string' ? cli.values.token : process.env.SMOOTHCAST_TOKEN;
  return t || undefined;
}

export function bearer(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}
