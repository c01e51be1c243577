import { act, renderHook } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { meetup, person } from '../lib/fixtures';
import type { MeetupView } from './types';
import { backoffMs, useLive } from './useLive';

class FakeSocket {
  static all: FakeSocket[] = [];
  onopen: (() => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  constructor(public url: string) {
    FakeSocket.all.push(this);
  }
  close() {
    this.onclose?.();
  }
  open() {
    this.onopen?.();
  }
  send(msg: object) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

let qc: QueryClient;
const wrapper = ({ children }: { children: ReactNode }) => <QueryClientProvider client={qc}>{children}</QueryClientProvider>;
const key = ['meetup', 'm1'];

beforeEach(() => {
  FakeSocket.all = [];
  vi.stubGlobal('WebSocket', FakeSocket);
  vi.useFakeTimers();
  qc = new QueryClient();
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('live updates', () => {
  it('takes the snapshot, applies events in order and counts presence', () => {
    const { result } = renderHook(() => useLive('m1'), { wrapper });
    const ws = FakeSocket.all[0];
    expect(ws.url).toMatch(/\/api\/v1\/meetups\/m1\/live$/);
    act(() => {
      ws.open();
      ws.send({ type: 'snapshot', revision: 5, meetup: meetup({ revision: 5 }), presence: 3 });
    });
    expect(result.current.state).toBe('open');
    expect(result.current.presence).toBe(3);
    act(() => ws.send({ type: 'event', revision: 6, event: { kind: 'participantJoined', participant: person('b', 'Bob') } }));
    expect(qc.getQueryData<MeetupView>(key)!.participants.map((p) => p.name)).toEqual(['Bob']);
    expect(qc.getQueryData<MeetupView>(key)!.revision).toBe(6);
    act(() => ws.send({ type: 'presence', count: 4 }));
    expect(result.current.presence).toBe(4);
  });

  it('refetches on a revision gap instead of applying the event', () => {
    renderHook(() => useLive('m1'), { wrapper });
    const ws = FakeSocket.all[0];
    const spy = vi.spyOn(qc, 'invalidateQueries');
    act(() => {
      ws.open();
      ws.send({ type: 'snapshot', revision: 5, meetup: meetup({ revision: 5 }), presence: 1 });
      ws.send({ type: 'event', revision: 8, event: { kind: 'participantJoined', participant: person('b', 'Bob') } });
    });
    expect(spy).toHaveBeenCalledWith({ queryKey: key });
    expect(qc.getQueryData<MeetupView>(key)!.participants).toEqual([]);
  });

  it('ignores events it already has and junk frames', () => {
    renderHook(() => useLive('m1'), { wrapper });
    const ws = FakeSocket.all[0];
    act(() => {
      ws.open();
      ws.send({ type: 'snapshot', revision: 5, meetup: meetup({ revision: 5 }), presence: 1 });
      ws.send({ type: 'event', revision: 5, event: { kind: 'participantJoined', participant: person('b', 'Bob') } });
      ws.onmessage?.({ data: 'not json' });
      ws.send({ type: 'mystery' });
    });
    expect(qc.getQueryData<MeetupView>(key)!.participants).toEqual([]);
  });

  it('shows reconnecting after a drop and resumes with since=<revision>', () => {
    const { result } = renderHook(() => useLive('m1'), { wrapper });
    const ws = FakeSocket.all[0];
    act(() => {
      ws.open();
      ws.send({ type: 'snapshot', revision: 7, meetup: meetup({ revision: 7 }), presence: 2 });
    });
    act(() => ws.close());
    expect(result.current.state).toBe('reconnecting');
    expect(result.current.presence).toBeNull();
    act(() => {
      vi.advanceTimersByTime(1500);
    });
    expect(FakeSocket.all).toHaveLength(2);
    expect(FakeSocket.all[1].url).toMatch(/live\?since=7$/);
    act(() => FakeSocket.all[1].open());
    expect(result.current.state).toBe('open');
  });

  it('reports a deleted meetup', () => {
    const { result } = renderHook(() => useLive('m1'), { wrapper });
    const ws = FakeSocket.all[0];
    act(() => {
      ws.open();
      ws.send({ type: 'snapshot', revision: 1, meetup: meetup({ revision: 1 }), presence: 1 });
      ws.send({ type: 'event', revision: 2, event: { kind: 'meetupDeleted' } });
    });
    expect(result.current.deleted).toBe(true);
  });

  it('backs off up to 15 seconds', () => {
    expect(backoffMs(0)).toBeGreaterThanOrEqual(1000);
    expect(backoffMs(0)).toBeLessThan(1300);
    expect(backoffMs(10)).toBeLessThan(15300);
  });
});
