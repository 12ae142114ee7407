// `smoothcast viewers URL`: virtual HLS viewers against a server on this machine (src/tools/viewers.ts has what
// they do). A progress line per second on stderr, then the report on stdout (a table, or one JSON object with
// --json). Ctrl-C ends the run early and still prints the report. Exits 0 when it ran (errors are in the report),
// 1 when not a single segment could be fetched, 2 on a usage error or a refused URL. It parses its own options
// (and needs no configuration), so main.ts hands it the arguments as they are.
import { parseArgs } from 'node:util';
import { SmoothcastError } from '../core/errors.ts';
import { type Percentiles, runViewers, type ViewerPick, type ViewersReport } from '../tools/viewers.ts';

const USAGE = `usage: smoothcast viewers URL [--count N] [--duration S] [--pick top|bottom|random|all-rungs]
                          [--spread S] [--timeout MS] [--no-audio] [--allow-remote] [--json]
  URL            an HLS multivariant (or media) playlist, its query (a playback token) included
  --count N      viewers, 1…5000 (default 10)
  --duration S   seconds the run lasts, 1…3600 (default 30)
  --pick P       the variant each viewer plays: top (default), bottom, random, all-rungs (viewer i: rung i mod n)
  --spread S     viewers start evenly over S seconds (default min(5, duration / 4))
  --timeout MS   per request, to the last byte (default 10000)
  --no-audio     play the video variant only, not its audio rendition
  --allow-remote load a host that is not a loopback address (only servers on this machine by default)
  --json         the report as JSON`;

class Usage extends Error {}

function number(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new Usage(`--${name} must be a number, not ${JSON.stringify(v)}`);
  return n;
}

const ms = (v: number) => (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
const pct = (p: Percentiles, f: (v: number) => string) =>
  p.count === 0 ? '-' : `p50 ${f(p.p50)}  p90 ${f(p.p90)}  p99 ${f(p.p99)}  max ${f(p.max)}  (n ${p.count})`;

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** The report as a person reads it. */
export function formatReport(r: ViewersReport): string {
  const row = (k: string, v: string) => `${k.padEnd(14)} ${v}`;
  const r2 = r.requests;
  const errors = Object.entries(r.errors.byKind)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ×${n}`)
    .join(', ');
  const renditions = Object.entries(r.renditions)
    .map(([k, n]) => `${k} ×${n}`)
    .join(', ');
  return [
    row('url', r.url),
    row('viewers', `${r.viewers} (${r.pick}${renditions ? `: ${renditions}` : ''})${r.live ? ', live' : ''}`),
    row('elapsed', `${r.elapsedSeconds.toFixed(1)} s`),
    row(
      'requests',
      `${r2.total} (multivariant ${r2.multivariant}, playlists ${r2.playlist}, init ${r2.init}, segments ${r2.segment})`,
    ),
    row('errors', r.errors.total ? `${r.errors.total}: ${errors}` : '0'),
    row('segments', `${r.segments}, ${mb(r.bytes.media)} of media (${mb(r.bytes.total)} in all)`),
    row('throughput', `${r.throughputMbps.toFixed(1)} Mb/s`),
    row('segment ms', pct(r.segmentLatencyMs, ms)),
    row('playlist ms', pct(r.playlistLatencyMs, ms)),
    ...(r.live ? [] : [row('stalls', String(r.stalls))]),
    ...(r.playlistAgeSeconds
      ? [
          row(
            'live age s',
            pct(r.playlistAgeSeconds, (v) => v.toFixed(2)),
          ),
        ]
      : []),
  ].join('\n');
}

export async function viewersCommand(args: string[]): Promise<number> {
  const stop = new AbortController();
  const onSigint = () => stop.abort(new Error('interrupted'));
  try {
    let parsed: ReturnType<typeof parse>;
    try {
      parsed = parse(args);
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) throw new Usage((err as Error).message);
      throw err;
    }
    const { values, positionals } = parsed;
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    if (positionals.length !== 1) throw new Usage('give one playlist URL');
    const pick = values.pick ?? 'top';
    if (!['top', 'bottom', 'random', 'all-rungs'].includes(pick)) {
      throw new Usage(`--pick must be top, bottom, random or all-rungs, not ${JSON.stringify(pick)}`);
    }
    const duration = number('duration', values.duration, 30);
    const spread = values.spread === undefined ? undefined : number('spread', values.spread, 0);
    process.once('SIGINT', onSigint);
    const report = await runViewers({
      url: positionals[0]!,
      count: number('count', values.count, 10),
      durationSeconds: duration,
      pick: pick as ViewerPick,
      ...(spread !== undefined ? { startSpreadSeconds: spread } : {}),
      timeoutMs: number('timeout', values.timeout, 10_000),
      audio: !values['no-audio'],
      allowRemote: values['allow-remote'] === true,
      signal: stop.signal,
      onProgress: (p) => {
        const l = p.segmentLatencyMs;
        process.stderr.write(
          `${`${p.elapsedSeconds.toFixed(0)}/${duration} s`.padStart(11)}  ${p.active} playing  ${p.requests} req  ` +
            `${p.errors} err  ${p.segments} seg  ${mb(p.bytes)}  ${p.mbps.toFixed(1)} Mb/s  ` +
            `segment p50 ${ms(l.p50)} ms p99 ${ms(l.p99)} ms\n`,
        );
      },
    });
    console.log(values.json ? JSON.stringify(report) : formatReport(report));
    return report.segments > 0 ? 0 : 1;
  } catch (err) {
    if (err instanceof Usage || (err instanceof SmoothcastError && err.code === 'BAD_REQUEST')) {
      console.error(`smoothcast viewers: ${err.message}${err instanceof Usage ? `\n\n${USAGE}` : ''}`);
      return 2;
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      count: { type: 'string', short: 'n' },
      duration: { type: 'string', short: 'd' },
      pick: { type: 'string' },
      spread: { type: 'string' },
      timeout: { type: 'string' },
      'no-audio': { type: 'boolean' },
      'allow-remote': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
