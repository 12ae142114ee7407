// Test support for the live role (not used by production code): processes with a kill timeout, deadline polling,
// following growing CMAF files, and scripted RTMP publish traffic.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { FragmentIndexer } from '../../media/bmff/index.ts';
import { type Amf0Object, ecmaArray } from '../../media/rtmp/amf0.ts';
import { Client, clientHandshake, concat } from '../../media/rtmp/testing.ts';

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  ms: number;
}

/** A process with arguments as an array and a SIGKILL after `timeoutMs`; `child` to watch it while it runs. */
export function run(command: string, args: readonly string[], timeoutMs: number) {
  const t0 = performance.now();
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<Run>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, ms: performance.now() - t0 });
    });
  });
  return { child, done, t0 };
}

/** Resolves once `predicate` holds, checking every `everyMs` until `ms` have passed. */
export async function until(predicate: () => boolean, ms: number, what: string, everyMs = 20): Promise<void> {
  const deadline = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Indexes a file that ffmpeg is still writing, as far as it has complete boxes. */
export class GrowingFile {
  readonly ix = new FragmentIndexer();
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  scan(): this {
    if (!existsSync(this.path)) return this;
    const size = statSync(this.path).size;
    const fd = openSync(this.path, 'r');
    try {
      for (let r = this.ix.next(size); r; r = this.ix.next(size)) {
        const b = Buffer.alloc(r.length);
        const n = readSync(fd, b, 0, r.length, r.offset);
        this.ix.push(r.offset, b.subarray(0, n));
        if (n < r.length) break;
      }
    } finally {
      closeSync(fd);
    }
    return this;
  }
}

/** A TCP connection to the ingest; `closed` resolves when the server (or we) closed it. */
export function dial(port: number): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const t0 = performance.now();
    const closed = new Promise<number>((r) => socket.on('close', () => r(performance.now() - t0)));
    socket.on('error', () => {});
    // What the server says is read and dropped: a socket whose input is not read never sees the server close it.
    socket.resume();
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

export const AVC_SEQUENCE = Uint8Array.of(0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1e, 0xff);
export const AAC_SEQUENCE = Uint8Array.of(0xaf, 0, 0x11, 0x90);

/** An AVC frame body of `size` bytes (VIDEODATA E.4.3.1 + AVCVIDEOPACKET type 1; the NAL bytes are filler). */
export function avcFrame(size: number, key: boolean): Uint8Array {
  const b = new Uint8Array(size);
  b.set([key ? 0x17 : 0x27, 1, 0, 0, 0]);
  return b;
}

/** A scripted publisher's bytes: handshake, connect and publish, written at once (the server needs no replies). */
export function publishPreamble(key: string, client = new Client()): Uint8Array {
  const { c0c1, c2 } = clientHandshake();
  return concat([c0c1, c2, client.setChunkSize(65536), client.connect(), client.publish(key)]);
}

export function onMetaData(client: Client, data: Amf0Object): Uint8Array {
  return client.data(1, '@setDataFrame', 'onMetaData', ecmaArray(data));
}

export { Client, clientHandshake, concat };
