import { describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api/client';
import { SaveQueue, retryable, type SaveState } from './saveQueue';

type Patch = { availability?: Record<string, string>; placeVotes?: string[] };

/** A server that can be switched off: requests then fail as a dropped connection does. */
function fakeServer() {
  const received: Patch[] = [];
  let up = true;
  let refuse: ApiError | null = null;
  return {
    received,
    setUp: (v: boolean) => (up = v),
    refuseWith: (e: ApiError | null) => (refuse = e),
    send: vi.fn(async (p: Patch) => {
      await Promise.resolve();
      if (!up) throw new ApiError(0, 'Network error');
      if (refuse) throw refuse;
      received.push(p);
      return { ...p, id: 'me' };
    }),
  };
}

function setup(restored: Patch | null = null) {
  const server = fakeServer();
  const states: SaveState[] = [];
  const persisted: (Patch | null)[] = [];
  const timers: (() => void)[] = [];
  const saved: unknown[] = [];
  const rejected: unknown[] = [];
  const q = new SaveQueue<Patch, Patch & { id: string }>(
    {
      send: server.send,
      onSaved: (r) => saved.push(r),
      onRejected: (e) => rejected.push(e),
      onChange: (s) => states.push(s),
      persist: (p) => persisted.push(p),
      setTimer: (fn) => timers.push(fn),
      clearTimer: () => {},
    },
    restored,
  );
  return { q, server, states, persisted, timers, saved, rejected };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('SaveQueue', () => {
  it('sends an edit and reports saved', async () => {
    const { q, server, states, persisted } = setup();
    q.save({ availability: { s1: 'yes' } });
    await settle();
    expect(server.received).toEqual([{ availability: { s1: 'yes' } }]);
    expect(states).toEqual(['saving', 'saved']);
    expect(persisted.at(-1)).toBeNull();
  });

  it('keeps edits made while the server is unreachable, merged, and sends them when it is back', async () => {
    const { q, server, states, persisted, timers } = setup();
    server.setUp(false);
    q.save({ availability: { s1: 'yes' } });
    await settle();
    expect(states.at(-1)).toBe('offline');
    q.save({ placeVotes: ['p1'] });
    q.save({ availability: { s1: 'yes', s2: 'maybe' } });
    await settle();
    // Kept on the device (across a reload) until the server has them.
    expect(persisted.at(-1)).toEqual({ availability: { s1: 'yes', s2: 'maybe' }, placeVotes: ['p1'] });
    expect(timers.length).toBeGreaterThan(0);
    server.setUp(true);
    q.retryNow();
    await settle();
    await settle();
    expect(server.received.at(-1)).toEqual({ availability: { s1: 'yes', s2: 'maybe' }, placeVotes: ['p1'] });
    expect(states.at(-1)).toBe('recovered');
    expect(persisted.at(-1)).toBeNull();
    expect(q.unsaved).toBeNull();
  });

  it('an edit made while a request is out goes next, in order', async () => {
    const { q, server } = setup();
    q.save({ availability: { s1: 'yes' } });
    q.save({ availability: {} });
    await settle();
    await settle();
    expect(server.received).toEqual([{ availability: { s1: 'yes' } }, { availability: {} }]);
  });

  it('edits restored after a reload are sent', async () => {
    const { q, server, states } = setup({ placeVotes: ['p2'] });
    expect(states).toEqual(['offline']);
    await q.flush();
    expect(server.received).toEqual([{ placeVotes: ['p2'] }]);
    expect(states.at(-1)).toBe('recovered');
  });

  it('an edit the server refuses is dropped and reported, not retried', async () => {
    const { q, server, states, rejected, timers } = setup();
    server.refuseWith(new ApiError(409, 'Conflict', 'closed'));
    q.save({ availability: { s1: 'yes' } });
    await settle();
    expect(states.at(-1)).toBe('failed');
    expect(rejected).toHaveLength(1);
    expect(timers).toHaveLength(0);
    expect(q.unsaved).toBeNull();
  });

  it('knows what is worth retrying', () => {
    expect(retryable(new ApiError(0, 'Network error'))).toBe(true);
    expect(retryable(new ApiError(503, 'Unavailable'))).toBe(true);
    expect(retryable(new ApiError(429, 'Too many'))).toBe(true);
    expect(retryable(new ApiError(422, 'Invalid'))).toBe(false);
    expect(retryable(new Error('x'))).toBe(false);
  });
});
