// `smoothcast <command>`: one file per command; this one parses the shared options and dispatches.
import { parseArgs } from 'node:util';
import { type ConfigInput, loadConfig } from '../core/config.ts';
import { SmoothcastError } from '../core/errors.ts';

const USAGE = `usage: smoothcast <command> [options]

commands:
  serve  [--port N] [--host H] [--data DIR] [--roles LIST]
                                                    run the platform (default: every role; LIST from api, upload,
                                                    origin, worker, live, web)
  import [--data DIR] [--json] [--no-wait] [--captions FILE[:lang]]… [--policy public|signed]
         [--encryption none|aes-128|cbcs|cenc] FILE…
                                                    add local video or audio files; waits until each is ready;
                                                    --captions adds a .srt/.vtt text track to each (repeatable)
  upload --server URL [--token T] [--wait] [--json] [--chunk-size BYTES] [--state FILE] FILE…
                                                    upload files to a running server over tus; run it again
                                                    after an interruption to resume (upload URLs are kept in
                                                    --state, default ~/.local/state/smoothcast/uploads.json)
  export [--data DIR] [--json] ID DIR              write a folder that plays from any static host: one file
                                                    per rendition (with a sidx), byte-range HLS, SegmentBase DASH
  captions add ID FILE --lang L [--label X] [--kind subtitles|captions] [--json]
  captions ls ID [--json] | captions rm ID CAPTION   sidecar captions/subtitles of an asset
  migrate [--check] [--json]                        apply pending schema migrations to the configured database
                                                    (database.url or the data folder's SQLite); --check only
                                                    reports (exit 1 when migrations are pending)
  ls     [--data DIR] [--json]                      list assets
  rm     [--data DIR] ID…                           delete assets and their files
  live create TITLE [--dvr SECONDS] [--latency low|standard] [--no-archive] [--json]
  live ls [--json] | live show ID [--json]
  live start|stop|shutdown|rotate-key|rm ID [--json]
                                                    live streams of a running server (--server URL; default
                                                    server.publicUrl, else http://localhost:PORT); show prints
                                                    the state, ingest URLs, OBS settings, playback URLs, stats

  user add NAME [--admin | --role admin|editor|viewer] --password-stdin [--json] | user ls [--json]
                                                    accounts (on the data folder; the first admin)
  token create --name N --scopes S,S [--expires 30d] [--json] | token ls [--json] | token revoke ID
                                                    API tokens; the secret is printed once (scopes: assets:read,
                                                    assets:write, uploads:create, live:write, playback:sign, admin)
  viewers URL [--count N] [--duration S] [--pick top|bottom|random|all-rungs] [--json]
                                                    virtual HLS viewers (load test of a server on this machine)
  edge-config --origin URL… --listen PORT --cache-dir DIR [--max-size 10g] [--listen-address A] [--server-name N]…
              [--prefix DIR] [--user U]           print an nginx.conf for an edge cache in front of the origins
                                                    (docs/edge.md)

commands that talk to a server (upload, live) send --token T or $SMOOTHCAST_TOKEN as Authorization: Bearer

options for every command:
  --config FILE   JSON configuration file (also SMOOTHCAST_CONFIG); see docs/configuration.md
  --data DIR      data folder (database + media); default ./data (SMOOTHCAST_STORAGE_DATA_DIR)
`;

export interface Cli {
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  // Its own options, and no data folder or configuration to load.
  if (command === 'viewers') return (await import('./viewers.ts')).viewersCommand(rest);
  if (command === 'edge-config') return (await import('./edge-config.ts')).edgeConfigCommand(rest);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      data: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      json: { type: 'boolean' },
      'no-wait': { type: 'boolean' },
      server: { type: 'string' },
      wait: { type: 'boolean' },
      'chunk-size': { type: 'string' },
      state: { type: 'string' },
      captions: { type: 'string', multiple: true },
      lang: { type: 'string' },
      label: { type: 'string' },
      kind: { type: 'string' },
      dvr: { type: 'string' },
      latency: { type: 'string' },
      'no-archive': { type: 'boolean' },
      token: { type: 'string' },
      roles: { type: 'string' },
      admin: { type: 'boolean' },
      role: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      name: { type: 'string' },
      scopes: { type: 'string' },
      expires: { type: 'string' },
      policy: { type: 'string' },
      encryption: { type: 'string' },
      check: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const overrides: ConfigInput = {
    server: { port: values.port, host: values.host, roles: values.roles },
    storage: { dataDir: values.data },
  };
  const config = loadConfig({ file: values.config, overrides });
  const cli: Cli = { positionals, values };
  switch (command) {
    case 'serve':
      return (await import('./serve.ts')).serve(config);
    case 'import':
      return (await import('./import.ts')).importCommand(config, cli);
    case 'upload':
      return (await import('./upload.ts')).uploadCommand(config, cli);
    case 'export':
      return (await import('./export.ts')).exportCommand(config, cli);
    case 'captions':
      return (await import('./captions.ts')).captionsCommand(config, cli);
    case 'migrate':
      return (await import('./migrate.ts')).migrateCommand(config, cli);
    case 'ls':
      return (await import('./ls.ts')).ls(config, cli);
    case 'rm':
      return (await import('./rm.ts')).rm(config, cli);
    case 'live':
      return (await import('./live.ts')).liveCommand(config, cli);
    case 'user':
      return (await import('./accounts.ts')).userCommand(config, cli);
    case 'token':
      return (await import('./accounts.ts')).tokenCommand(config, cli);
    default:
      process.stderr.write(`smoothcast: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof SmoothcastError) {
      process.stderr.write(`smoothcast: ${err.code}: ${err.message}\n`);
    } else if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`smoothcast: ${(err as Error).message}\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    } else {
      process.stderr.write(`smoothcast: ${(err as Error).stack ?? String(err)}\n`);
    }
    process.exitCode = 1;
  },
);
