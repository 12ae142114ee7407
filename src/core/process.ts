// Spawning helper processes (ffmpeg, ffprobe): arguments as an array (never a shell), a hard timeout, cancellation,
// and a bounded tail of stderr kept for diagnosis.
import { spawn } from 'node:child_process';

export interface RunOptions {
  timeoutMs: number;
  /** Called with each stdout chunk (utf8). When absent, stdout is collected (bounded by maxStdout). */
  onStdout?: (chunk: string) => void;
  maxStdout?: number;
  /** Bytes of stderr to keep (the end of it). */
  stderrTail?: number;
  signal?: AbortSignal;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderrTail: string;
  timedOut: boolean;
  aborted: boolean;
  /** Set when stdout exceeded maxStdout (the process was killed). */
  stdoutOverflow: boolean;
}

export function runProcess(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tailMax = opts.stderrTail ?? 8192;
    const maxStdout = opts.maxStdout ?? 16 * 1024 * 1024;
    let stderr = '';
    let stdout = '';
    let timedOut = false;
    let aborted = false;
    let stdoutOverflow = false;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    const onAbort = () => {
      aborted = true;
      kill();
    };
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (opts.onStdout) {
        opts.onStdout(chunk);
        return;
      }
      stdout += chunk;
      if (stdout.length > maxStdout) {
        stdoutOverflow = true;
        kill();
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.length > tailMax * 2) stderr = stderr.slice(-tailMax);
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ code, signal, stdout, stderrTail: stderr.slice(-tailMax), timedOut, aborted, stdoutOverflow });
    });
  });
}
