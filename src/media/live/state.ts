// The publishing point of a live stream as ONE table of legal transitions (modelled on IIS Live Smooth Streaming's
// Idle → Starting → Started → Stopped → Shutdown). Pure: the clock comes in as `nowMs`, timers live in roles/live.
//
//   state \ action   publish        firstMedia  publisherLost            reconnectTimeout  stop     start    shutdown
//   idle             starting       -           -                        -                 stopped¹ -        shutdown
//   starting         -              started     reconnecting² / idle³    -                 stopped  -        shutdown
//   started          -              -           reconnecting             -                 stopped  -        shutdown
//   reconnecting     starting       -           -                        stopped⁴          stopped  -        shutdown
//   stopped          -              -           -                        -                 -        idle     shutdown
//   shutdown         -              -           -                        -                 -        idle⁵    -
//
//   ¹ only an idle that continues an event (after `start` from stopped): it undoes that start.
//   ² the event already has media: the publisher may come back within the reconnect window.
//   ³ a first connection that never sent media leaves nothing to continue (an encoder's test connection must not
//     lock the stream in `stopped`).
//   ⁴ only at or after the deadline: a stale timer from an earlier loss is refused.
//   ⁵ a new event (a new asset); every other way into `starting` continues the current one.
//
// Decisions. A publisher that drops does not leave `started` for the API's `stopped`: it enters `reconnecting`, a
// state of its own in the table with a `deadline` (now + reconnect window); playlists stay live, ingest is accepted,
// and `publicState` reports it as 'started' (the five states) while the API may show the deadline. A
// publish in `reconnecting` continues the event after a discontinuity (`resume: true`); the timer's
// `reconnectTimeout` at the deadline moves it to `stopped`. In `stopped` ingest is refused (the issue: "ingest
// refused, the DVR window still plays"); the API's `start` reopens it (→ idle with `resume: true`), and the next
// publish continues the SAME event timeline with a discontinuity. `shutdown` ends the event; `start` from there
// begins a new one.
import { SmoothcastError } from '../../core/errors.ts';

export const LIVE_ACTIONS = [
  'publish',
  'firstMedia',
  'publisherLost',
  'reconnectTimeout',
  'stop',
  'start',
  'shutdown',
] as const;
export type LiveAction = (typeof LIVE_ACTIONS)[number];

export type LiveState =
  /** No publisher. `resume`: the next publish continues an event that already has media. */
  | { name: 'idle'; since: number; resume: boolean }
  /** A publisher is connected and authenticated; no media has come out of the encoder yet. */
  | { name: 'starting'; since: number; resume: boolean }
  | { name: 'started'; since: number }
  /** The publisher dropped; until `deadline` (ms) it may come back and continue the event. */
  | { name: 'reconnecting'; since: number; deadline: number }
  | { name: 'stopped'; since: number }
  | { name: 'shutdown'; since: number };
export type LiveStateName = LiveState['name'];
export const LIVE_STATES: readonly LiveStateName[] = [
  'idle',
  'starting',
  'started',
  'reconnecting',
  'stopped',
  'shutdown',
];

export interface LivePolicy {
  /** How long a dropped publisher may take to come back (the stream's reconnectWindowSeconds × 1000). */
  reconnectWindowMs: number;
}

export const DEFAULT_POLICY: LivePolicy = { reconnectWindowMs: 30_000 };

/** A cell: the next state, or undefined where a guard makes the action illegal in this particular state value. */
type Rule<S extends LiveState> = (s: S, now: number, policy: LivePolicy) => LiveState | undefined;
type Table = { [N in LiveStateName]: { [A in LiveAction]: Rule<Extract<LiveState, { name: N }>> | null } };

const toShutdown = (_: LiveState, now: number): LiveState => ({ name: 'shutdown', since: now });
const toStopped = (_: LiveState, now: number): LiveState => ({ name: 'stopped', since: now });
const reconnecting = (_: LiveState, now: number, p: LivePolicy): LiveState => ({
  name: 'reconnecting',
  since: now,
  deadline: now + p.reconnectWindowMs,
});

export const TRANSITIONS: Table = {
  idle: {
    publish: (s, now) => ({ name: 'starting', since: now, resume: s.resume }),
    firstMedia: null,
    publisherLost: null,
    reconnectTimeout: null,
    stop: (s, now) => (s.resume ? toStopped(s, now) : undefined),
    start: null,
    shutdown: toShutdown,
  },
  starting: {
    publish: null, // a second publisher on a key already live is refused
    firstMedia: (_, now) => ({ name: 'started', since: now }),
    publisherLost: (s, now, p) => (s.resume ? reconnecting(s, now, p) : { name: 'idle', since: now, resume: false }),
    reconnectTimeout: null,
    stop: toStopped,
    start: null,
    shutdown: toShutdown,
  },
  started: {
    publish: null,
    firstMedia: null,
    publisherLost: reconnecting,
    reconnectTimeout: null,
    stop: toStopped,
    start: null,
    shutdown: toShutdown,
  },
  reconnecting: {
    publish: (_, now) => ({ name: 'starting', since: now, resume: true }),
    firstMedia: null,
    publisherLost: null,
    reconnectTimeout: (s, now) => (now >= s.deadline ? toStopped(s, now) : undefined),
    stop: toStopped,
    start: null,
    shutdown: toShutdown,
  },
  stopped: {
    publish: null, // ingest refused until the API starts the stream again
    firstMedia: null,
    publisherLost: null,
    reconnectTimeout: null,
    stop: null,
    start: (_, now) => ({ name: 'idle', since: now, resume: true }),
    shutdown: toShutdown,
  },
  shutdown: {
    publish: null,
    firstMedia: null,
    publisherLost: null,
    reconnectTimeout: null,
    stop: null,
    start: (_, now) => ({ name: 'idle', since: now, resume: false }),
    shutdown: null,
  },
};

export function initialState(nowMs: number): LiveState {
  return { name: 'idle', since: nowMs, resume: false };
}

function apply(state: LiveState, action: LiveAction, nowMs: number, policy: LivePolicy): LiveState | undefined {
  const rule = TRANSITIONS[state.name][action] as Rule<LiveState> | null;
  return rule ? rule(state, nowMs, policy) : undefined;
}

/** The state after `action`, or LIVE_STATE_CONFLICT (409) naming both when the table does not allow it. */
export function transition(
  state: LiveState,
  action: LiveAction,
  nowMs: number,
  policy: LivePolicy = DEFAULT_POLICY,
): LiveState {
  if (!Number.isFinite(nowMs)) throw new SmoothcastError('INTERNAL', `bad clock value ${nowMs}`);
  if (!(Number.isFinite(policy.reconnectWindowMs) && policy.reconnectWindowMs >= 0)) {
    throw new SmoothcastError('INTERNAL', `bad reconnect window ${policy.reconnectWindowMs}`);
  }
  const next = apply(state, action, nowMs, policy);
  if (!next) {
    throw new SmoothcastError('LIVE_STATE_CONFLICT', `cannot ${action} a live stream that is ${describe(state)}`);
  }
  return next;
}

/** Whether `action` is legal now (e.g. the ingest's check at `publish`, before any byte is stored). */
export function can(state: LiveState, action: LiveAction, nowMs: number, policy = DEFAULT_POLICY): boolean {
  return apply(state, action, nowMs, policy) !== undefined;
}

/** The API's five states: a publisher's reconnect window is part of `started`. */
export function publicState(state: LiveState): 'idle' | 'starting' | 'started' | 'stopped' | 'shutdown' {
  return state.name === 'reconnecting' ? 'started' : state.name;
}

/** When the roles must fire `reconnectTimeout`; undefined when no timer is due. */
export function deadline(state: LiveState): number | undefined {
  return state.name === 'reconnecting' ? state.deadline : undefined;
}

function describe(s: LiveState): string {
  return s.name === 'reconnecting' ? `reconnecting (deadline ${s.deadline} ms)` : s.name;
}
