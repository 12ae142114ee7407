// The labs' origin (interop.test.ts: lab.html + lab.js; live.serial-test.ts and bench/live.ts: live.html + live-lab.js):
// a page, its script and the player libraries from node_modules, on a port of its own — so the page is on another
// origin than the media, as a real embed is.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;
const LIBS: Record<string, string> = {
  'hls.js': 'node_modules/hls.js/dist/hls.min.js',
  'dash.all.min.js': 'node_modules/dashjs/dist/modern/umd/dash.all.min.js',
  'dash.mss.min.js': 'node_modules/dashjs/dist/modern/umd/dash.mss.min.js',
  'shaka5.js': 'node_modules/shaka-player/dist/shaka-player.compiled.js',
  // Readable stacks when a player fails (&debug=1).
  'hls.debug.js': 'node_modules/hls.js/dist/hls.js',
  'dash.all.debug.js': 'node_modules/dashjs/dist/modern/umd/dash.all.debug.js',
  'dash.mss.debug.js': 'node_modules/dashjs/dist/modern/umd/dash.mss.debug.js',
  'shaka5.debug.js': 'node_modules/shaka-player/dist/shaka-player.compiled.debug.js',
};

export interface Lab {
  url: string;
  close(): Promise<void>;
}

/** Serves /{page}.html (a 640×360 video element and the script), /{script} and /lib/* on 127.0.0.1:0. */
export function startLab(page: string, script: string): Promise<Lab> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (type: string, body: Buffer | string) => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (path === `/${page}.html`) {
      return send(
        'text/html; charset=utf-8',
        `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><video width="640" height="360"></video><script src="/${script}"></script>`,
      );
    }
    if (path === `/${script}`) return send('text/javascript', readFileSync(join(root, 'test/browser', script)));
    const lib = LIBS[path.replace(/^\/lib\//, '')];
    if (lib) return send('text/javascript', readFileSync(join(root, lib)));
    res.writeHead(404).end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    ),
  );
}

export type LiveLab = Lab;
/** The live lab: /live.html and /live-lab.js. */
export const startLiveLab = (): Promise<Lab> => startLab('live', 'live-lab.js');
