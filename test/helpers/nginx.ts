// nginx (Debian's nginx-light) as a plain static file server on a free port: the benchmarks' reference and the
// interoperability matrix's static host for `smoothcast export` folders.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, until } from './platform.ts';

export interface Nginx {
  url: string;
  stop(): Promise<void>;
}

/**
 * nginx serving `root` as static files (sendfile on, as a CDN origin would) on a free port; with `put`, also
 * accepting `PUT /put/<name>` bodies into `root/put/` (the DAV module, as a plain upload target); with `cors`,
 * answering players on other origins.
 */
export async function startNginx(
  root: string,
  workDir: string,
  opts: { put?: boolean; cors?: boolean } = {},
): Promise<Nginx> {
  const port = await freePort();
  mkdirSync(workDir, { recursive: true });
  const conf = join(workDir, 'nginx.conf');
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? 'user root root; # as root, workers would run as nobody and be refused our files\n' : ''}worker_processes auto;
pid ${workDir}/nginx.pid;
error_log ${workDir}/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { video/mp4 m4s mp4; application/vnd.apple.mpegurl m3u8; application/dash+xml mpd; image/jpeg jpg; }
  client_body_temp_path ${workDir}/body; proxy_temp_path ${workDir}/proxy; fastcgi_temp_path ${workDir}/fcgi;
  uwsgi_temp_path ${workDir}/uwsgi; scgi_temp_path ${workDir}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    ${opts.put ? 'location /put/ { dav_methods PUT; create_full_put_path on; client_max_body_size 0; client_body_buffer_size 1m; }' : ''}
    ${opts.cors ? "add_header Access-Control-Allow-Origin * always; add_header Access-Control-Expose-Headers 'Content-Length, Content-Range' always;" : ''}
  }
}
`,
  );
  const child = spawn('/usr/sbin/nginx', ['-c', conf, '-p', workDir], { stdio: 'inherit' });
  const url = `http://127.0.0.1:${port}`;
  await until(
    'nginx start',
    async () => {
      try {
        await fetch(`${url}/`);
        return true;
      } catch {
        return undefined;
      }
    },
    10_000,
  );
  return {
    url,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGQUIT');
      await exited;
    },
  };
}

/**
 * nginx with a complete configuration file of the caller's (`nginx -c FILE`, in the foreground so it never
 * outlives the test), once `probeUrl` answers at all; stop() ends it at once (fast shutdown) and waits for it.
 */
export async function startNginxWithConfig(conf: string, probeUrl: string): Promise<Nginx> {
  const child = spawn('/usr/sbin/nginx', ['-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  let exited = false;
  const exit = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true;
      r();
    }),
  );
  try {
    await until(
      'nginx start',
      async () => {
        if (exited) throw new Error(`nginx -c ${conf} exited: ${stderr}`);
        try {
          await (await fetch(probeUrl)).arrayBuffer();
          return true;
        } catch {
          return undefined;
        }
      },
      10_000,
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    url: new URL(probeUrl).origin,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      await exit;
    },
  };
}
