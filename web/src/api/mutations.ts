import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useMutation, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api } from './client';
import type { FinalizeInput, LiveEvent, MeetupPatch, MeetupView, Participant, ParticipantPatch, PlaceInput } from './types';
import { applyEvent } from '../lib/live';
import { SaveQueue, type SaveState } from '../lib/saveQueue';
import { getPending, setPending } from '../lib/storage';
import { viewerZone } from '../lib/timegrid';

export const meetupKey = (id: string) => ['meetup', id] as const;

/**
 * Applies the answer to our own request to the cached meetup with the same reducer as a live event
 * (`applyEvent`), so a request and its echo over the WebSocket land the same way, in either order.
 * The revision stays: the live event that follows is then applied too (idempotent) or skipped.
 */
export function applyLocal(qc: QueryClient, id: string, ev: LiveEvent) {
  qc.setQueryData<MeetupView>(meetupKey(id), (m) => (m ? (applyEvent(m, ev, m.revision) ?? m) : m));
}

/** A whole view from the server (PATCH meetup, finalize) replaces the cache unless it is older. */
export function applyView(qc: QueryClient, id: string, v: MeetupView) {
  qc.setQueryData<MeetupView>(meetupKey(id), (m) => (!m || v.revision >= m.revision ? v : m));
}

function useCache(id: string) {
  const qc = useQueryClient();
  return useMemo(
    () => ({
      apply: (ev: LiveEvent) => applyLocal(qc, id, ev),
      view: (v: MeetupView) => applyView(qc, id, v),
      refetch: () => void qc.invalidateQueries({ queryKey: meetupKey(id) }),
    }),
    [qc, id],
  );
}

export function useJoin(id: string) {
  const cache = useCache(id);
  return useMutation({
    mutationFn: (name: string) => api.join(id, { name, timeZone: viewerZone() }),
    onSuccess: (res) => cache.apply({ kind: 'participantJoined', participant: res.participant }),
  });
}

export function useAddPlace(id: string, token: string | undefined) {
  const cache = useCache(id);
  return useMutation({
    mutationFn: (place: PlaceInput) => api.addPlace(id, place, token ?? ''),
    onSuccess: (place) => cache.apply({ kind: 'placeAdded', place }),
  });
}

export function useRemovePlace(id: string, token: string | undefined) {
  const cache = useCache(id);
  return useMutation({
    mutationFn: (placeId: string) => api.removePlace(id, placeId, token ?? ''),
    onMutate: (placeId) => cache.apply({ kind: 'placeRemoved', placeId }),
    onError: () => cache.refetch(),
  });
}

export function useAddComment(id: string, token: string | undefined) {
  const cache = useCache(id);
  return useMutation({
    mutationFn: (text: string) => api.addComment(id, text, token ?? ''),
    onSuccess: (comment) => cache.apply({ kind: 'commentAdded', comment }),
  });
}

export function useRemoveComment(id: string, token: string | undefined) {
  const cache = useCache(id);
  return useMutation({
    mutationFn: (commentId: string) => api.removeComment(id, commentId, token ?? ''),
    onMutate: (commentId) => cache.apply({ kind: 'commentRemoved', commentId }),
    onError: () => cache.refetch(),
  });
}

export function useRemoveParticipant(id: string, token: string | undefined) {
  const cache = useCache(id);
  return useMutation({
    mutationFn: (participantId: string) => api.removeParticipant(id, participantId, token ?? ''),
    onSuccess: (_v, participantId) => cache.apply({ kind: 'participantLeft', participantId }),
    onError: () => cache.refetch(),
  });
}

export function usePatchMeetup(id: string, adminToken: string | undefined) {
  const cache = useCache(id);
  return useMutation({
    mutationFn: (patch: MeetupPatch) => api.patchMeetup(id, patch, adminToken ?? ''),
    onSuccess: (v) => cache.view(v),
  });
}

export function useFinalize(id: string, adminToken: string | undefined) {
  const cache = useCache(id);
  return useMutation({
    mutationFn: (input: FinalizeInput) => api.finalize(id, input, adminToken ?? ''),
    onSuccess: (v) => cache.view(v),
  });
}

export function useDeleteMeetup(id: string, adminToken: string | undefined) {
  return useMutation({ mutationFn: () => api.deleteMeetup(id, adminToken ?? '') });
}

/** My participant with the edits the server has not confirmed yet laid over it. */
export function withPending(m: MeetupView, participantId: string | undefined, pending: ParticipantPatch | null): MeetupView {
  if (!participantId || !pending) return m;
  return {
    ...m,
    participants: m.participants.map((p) => (p.id === participantId ? ({ ...p, ...pending } as Participant) : p)),
  };
}

/**
 * Saves my own answers (availability, place votes): never silently lost. Each PATCH replaces
 * whole fields, so re-sending after a lost answer is harmless. Unconfirmed edits are kept in local
 * storage, shown over the server's state, and retried on reconnect.
 */
export function useSaveMe(
  id: string,
  participantId: string | undefined,
  token: string | undefined,
  onRejected: (err: unknown) => void,
) {
  const cache = useCache(id);
  const [state, setState] = useState<SaveState>('idle');
  const [pending, setPendingState] = useState<ParticipantPatch | null>(null);
  const queue = useRef<SaveQueue<ParticipantPatch, Participant> | null>(null);
  const rejected = useRef(onRejected);
  rejected.current = onRejected;

  useEffect(() => {
    if (!participantId || !token) return;
    const stored = getPending<ParticipantPatch>(id);
    const restored = stored?.participantId === participantId ? stored.patch : null;
    const q = new SaveQueue<ParticipantPatch, Participant>(
      {
        send: (patch) => api.patchParticipant(id, participantId, patch, token),
        onSaved: (p) => cache.apply({ kind: 'participantUpdated', participant: p }),
        onRejected: (err) => {
          rejected.current(err);
          cache.refetch();
        },
        onChange: (s, p) => {
          setState(s);
          setPendingState(p);
        },
        persist: (p) => setPending(id, p ? { participantId, patch: p } : undefined),
      },
      restored,
    );
    queue.current = q;
    setPendingState(restored);
    setState(q.state);
    if (restored) void q.flush();
    const retry = () => q.retryNow();
    window.addEventListener('online', retry);
    return () => {
      q.stop();
      window.removeEventListener('online', retry);
      queue.current = null;
    };
  }, [id, participantId, token, cache]);

  const save = useCallback((patch: ParticipantPatch) => queue.current?.save(patch), []);
  const retryNow = useCallback(() => queue.current?.retryNow(), []);
  return { state, pending, save, retryNow };
}
