import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import {
  can,
  deadline,
  initialState,
  LIVE_ACTIONS,
  LIVE_STATES,
  type LiveAction,
  type LiveState,
  publicState,
  TRANSITIONS,
  transition,
} from './state.ts';

const T0 = 1_700_000_000_000;
const NOW = T0 + 5000;
const WINDOW = 30_000;
const policy = { reconnectWindowMs: WINDOW };

// Every state value a cell can see: the guarded states appear in each variant their guard distinguishes.
const variants: Record<string, LiveState> = {
  'idle (new event)': { name: 'idle', since: T0, resume: false },
  'idle (continues an event)': { name: 'idle', since: T0, resume: true },
  'starting (new event)': { name: 'starting', since: T0, resume: false },
  'starting (continues an event)': { name: 'starting', since: T0, resume: true },
  started: { name: 'started', since: T0 },
  'reconnecting (before its deadline)': { name: 'reconnecting', since: T0, deadline: NOW + 1 },
  'reconnecting (at its deadline)': { name: 'reconnecting', since: T0, deadline: NOW },
  stopped: { name: 'stopped', since: T0 },
  shutdown: { name: 'shutdown', since: T0 },
};

const x = null; // illegal
const S: LiveState = { name: 'shutdown', since: NOW };
const stopped: LiveState = { name: 'stopped', since: NOW };
const reconnecting: LiveState = { name: 'reconnecting', since: NOW, deadline: NOW + WINDOW };

// The expected table, written out independently of state.ts: one row per variant, one column per action.
const expected: Record<string, Record<LiveAction, LiveState | null>> = {
  'idle (new event)': {
    publish: { name: 'starting', since: NOW, resume: false },
    firstMedia: x,
    publisherLost: x,
    reconnectTimeout: x,
    stop: x,
    start: x,
    shutdown: S,
  },
  'idle (continues an event)': {
    publish: { name: 'starting', since: NOW, resume: true },
    firstMedia: x,
    publisherLost: x,
    reconnectTimeout: x,
    stop: stopped,
    start: x,
    shutdown: S,
  },
  'starting (new event)': {
    publish: x,
    firstMedia: { name: 'started', since: NOW },
    publisherLost: { name: 'idle', since: NOW, resume: false },
    reconnectTimeout: x,
    stop: stopped,
    start: x,
    shutdown: S,
  },
  'starting (continues an event)': {
    publish: x,
    firstMedia: { name: 'started', since: NOW },
    publisherLost: reconnecting,
    reconnectTimeout: x,
    stop: stopped,
    start: x,
    shutdown: S,
  },
  started: {
    publish: x,
    firstMedia: x,
    publisherLost: reconnecting,
    reconnectTimeout: x,
    stop: stopped,
    start: x,
    shutdown: S,
  },
  'reconnecting (before its deadline)': {
    publish: { name: 'starting', since: NOW, resume: true },
    firstMedia: x,
    publisherLost: x,
    reconnectTimeout: x,
    stop: stopped,
    start: x,
    shutdown: S,
  },
  'reconnecting (at its deadline)': {
    publish: { name: 'starting', since: NOW, resume: true },
    firstMedia: x,
    publisherLost: x,
    reconnectTimeout: stopped,
    stop: stopped,
    start: x,
    shutdown: S,
  },
  stopped: {
    publish: x,
    firstMedia: x,
    publisherLost: x,
    reconnectTimeout: x,
    stop: x,
    start: { name: 'idle', since: NOW, resume: true },
    shutdown: S,
  },
  shutdown: {
    publish: x,
    firstMedia: x,
    publisherLost: x,
    reconnectTimeout: x,
    stop: x,
    start: { name: 'idle', since: NOW, resume: false },
    shutdown: x,
  },
};

describe('publishing point transitions', () => {
  it('has one table cell for every state and action', () => {
    assert.deepEqual(Object.keys(TRANSITIONS).sort(), [...LIVE_STATES].sort());
    for (const row of Object.values(TRANSITIONS)) assert.deepEqual(Object.keys(row).sort(), [...LIVE_ACTIONS].sort());
    const covered = new Set(Object.values(variants).map((v) => v.name));
    assert.deepEqual([...covered].sort(), [...LIVE_STATES].sort());
  });

  for (const [label, state] of Object.entries(variants)) {
    for (const action of LIVE_ACTIONS) {
      const want = expected[label]![action];
      it(`${label} × ${action} → ${want ? want.name : 'LIVE_STATE_CONFLICT'}`, () => {
        assert.equal(can(state, action, NOW, policy), want !== null);
        if (want) {
          assert.deepEqual(transition(state, action, NOW, policy), want);
          return;
        }
        assert.throws(
          () => transition(state, action, NOW, policy),
          (e: unknown) =>
            e instanceof SmoothcastError &&
            e.code === 'LIVE_STATE_CONFLICT' &&
            e.status === 409 &&
            e.message.includes(action) &&
            e.message.includes(state.name),
        );
      });
    }
  }
});

describe('an event through its life', () => {
  it('reconnects within the window, is stopped after it, resumes by API start, and ends', () => {
    let s = initialState(T0);
    const step = (a: LiveAction, at: number) => {
      s = transition(s, a, at, policy);
      return s;
    };
    step('publish', T0 + 1);
    assert.deepEqual(s, { name: 'starting', since: T0 + 1, resume: false });
    step('firstMedia', T0 + 2);
    step('publisherLost', T0 + 10);
    assert.equal(deadline(s), T0 + 10 + WINDOW);
    assert.equal(publicState(s), 'started', 'the API shows the reconnect window as started');
    assert.throws(() => transition(s, 'reconnectTimeout', T0 + 10 + WINDOW - 1, policy), /reconnecting/);
    step('publish', T0 + 20); // back in time: the same event, after a discontinuity
    assert.deepEqual(s, { name: 'starting', since: T0 + 20, resume: true });
    step('firstMedia', T0 + 21);
    step('publisherLost', T0 + 100);
    step('reconnectTimeout', T0 + 100 + WINDOW);
    assert.equal(s.name, 'stopped');
    assert.equal(deadline(s), undefined);
    assert.equal(can(s, 'publish', T0 + 200_000), false, 'ingest is refused while stopped');
    step('start', T0 + 200_000);
    assert.deepEqual(step('publish', T0 + 200_001), { name: 'starting', since: T0 + 200_001, resume: true });
    step('shutdown', T0 + 300_000);
    assert.equal(publicState(s), 'shutdown');
    assert.deepEqual(step('start', T0 + 400_000), { name: 'idle', since: T0 + 400_000, resume: false });
  });

  it('uses the default 30 s window and refuses bad clock values', () => {
    const s = transition({ name: 'started', since: 0 }, 'publisherLost', 1000);
    assert.equal(deadline(s), 31_000);
    assert.throws(() => transition(s, 'stop', Number.NaN), SmoothcastError);
    assert.throws(() => transition(s, 'stop', 1, { reconnectWindowMs: -1 }), SmoothcastError);
    const zero = transition({ name: 'started', since: 0 }, 'publisherLost', 1000, { reconnectWindowMs: 0 });
    assert.equal(transition(zero, 'reconnectTimeout', 1000).name, 'stopped');
  });
});
