import { useEffect, useRef, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import * as z from 'zod/mini';
import { api } from './client';
import type { LiveMessage, MeetupView } from './types';
import { applyEvent } from '../lib/live';

export type LiveState = 'connecting' | 'open' | 'reconnecting';

// Only the envelope is checked; payloads follow the contract's types.
const envelope = z.union([
  z.object({ type: z.literal('snapshot'), revision: z.number(), meetup: z.object({ id: z.string() }), presence: z.optional(z.number()) }),
  z.object({ type: z.literal('event'), revision: z.number(), event: z.object({ kind: z.string() }) }),
  z.object({ type: z.literal('presence'), count: z.number() }),
]);

/** Backoff: 1 s, 2 s, 4 s … capped at 15 s, with a little jitter. */
export function backoffMs(attempt: number): number {
  return Math.min(15_000, 1000 * 2 ** attempt) + Math.floor(Math.random() * 300);
}

/**
 * Keeps the cached meetup current over the live WebSocket: applies events in order, refetches on
 * a revision gap, reconnects with backoff (resuming with `since`), and reports presence.
 */
export function useLive(id: string | undefined, enabled = true) {
  const qc = useQueryClient();
  const [state, setState] = useState<LiveState>('connecting');
  const [presence, setPresence] = useState<number | null>(null);
  const [deleted, setDeleted] = useState(false);
  const everOpen = useRef(false);

  useEffect(() => {
    if (!id || !enabled) return;
    const key = ['meetup', id];
    let ws: WebSocket | null = null;
    let timer: number | undefined;
    let attempt = 0;
    let stopped = false;

    const onMessage = (ev: MessageEvent) => {
      let raw: unknown;
      try {
        raw = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (!envelope.safeParse(raw).success) return;
      const msg = raw as LiveMessage;
      if (msg.type === 'presence') {
        setPresence(msg.count);
        return;
      }
      if (msg.type === 'snapshot') {
        qc.setQueryData<MeetupView>(key, { ...msg.meetup, revision: msg.revision });
        if (typeof msg.presence === 'number') setPresence(msg.presence);
        return;
      }
      const cur = qc.getQueryData<MeetupView>(key);
      if (!cur) {
        void qc.invalidateQueries({ queryKey: key });
        return;
      }
      if (msg.revision <= cur.revision) return; // already have it (e.g. from our own request)
      if (msg.revision !== cur.revision + 1) {
        void qc.invalidateQueries({ queryKey: key });
        return;
      }
      const next = applyEvent(cur, msg.event, msg.revision);
      if (next === null) setDeleted(true);
      else qc.setQueryData<MeetupView>(key, next);
    };

    const connect = () => {
      if (stopped) return;
      const since = qc.getQueryData<MeetupView>(key)?.revision;
      ws = new WebSocket(api.liveUrl(id, since));
      ws.onopen = () => {
        attempt = 0;
        everOpen.current = true;
        setState('open');
      };
      ws.onmessage = onMessage;
      ws.onclose = () => {
        ws = null;
        if (stopped) return;
        setState(everOpen.current ? 'reconnecting' : 'connecting');
        setPresence(null);
        timer = window.setTimeout(connect, backoffMs(attempt++));
      };
      ws.onerror = () => ws?.close();
    };

    const retryNow = () => {
      if (ws || stopped) return;
      window.clearTimeout(timer);
      attempt = 0;
      connect();
    };

    connect();
    window.addEventListener('online', retryNow);
    const onVisible = () => document.visibilityState === 'visible' && retryNow();
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      window.removeEventListener('online', retryNow);
      document.removeEventListener('visibilitychange', onVisible);
      if (ws) {
        ws.onclose = null;
        ws.close();
      }
    };
  }, [id, enabled, qc]);

  return { state, presence, deleted };
}
