// One progress line per item on a terminal (redrawn in place), or plain lines at each 10 % step elsewhere
// (CI logs, pipes), so a slow import always shows it is moving.
export interface BarState {
  label: string;
  percent: number;
  status: string;
  speed?: number | null;
  etaSeconds?: number | null;
}

function clock(s: number): string {
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

export function renderBar(s: BarState, width = 30): string {
  const p = Math.max(0, Math.min(100, s.percent));
  const filled = Math.round((p / 100) * width);
  const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
  const speed = s.speed ? ` ${s.speed.toFixed(2)}x` : '';
  const eta = s.etaSeconds != null ? ` ETA ${clock(s.etaSeconds)}` : '';
  return `${bar} ${p.toFixed(0).padStart(3)}% ${s.status}${speed}${eta}  ${s.label}`;
}

export class ProgressBars {
  private readonly out: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly lines = new Map<string, BarState>();
  private readonly lastStep = new Map<string, string>();
  private drawn = 0;

  constructor(out: NodeJS.WriteStream = process.stderr) {
    this.out = out;
    this.tty = Boolean(out.isTTY);
  }

  update(key: string, s: BarState): void {
    this.lines.set(key, s);
    if (this.tty) {
      this.redraw();
      return;
    }
    const step = `${s.status}:${Math.floor(s.percent / 10)}`;
    if (this.lastStep.get(key) !== step) {
      this.lastStep.set(key, step);
      this.out.write(`${renderBar(s, 20)}\n`);
    }
  }

  private redraw(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A`);
    for (const s of this.lines.values()) this.out.write(`\x1b[2K${renderBar(s)}\n`);
    this.drawn = this.lines.size;
  }
}
