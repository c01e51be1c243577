import type { LiveEvent, MeetupChanges, MeetupView } from '../api/types';

/**
 * Applies one live event to the cached meetup. Returns null when the meetup was deleted.
 * Events carry only what changed; the derived fields (names per slot and place, scores, ranking)
 * are recomputed as the server computes them, so the result equals the server's view at that
 * revision (except `updatedAt`, which only snapshots and meetup events carry).
 */
export function applyEvent(m: MeetupView, ev: LiveEvent, revision: number): MeetupView | null {
  const next = applyLists(m, ev, revision);
  return next && withDerived(next);
}

function applyLists(m: MeetupView, ev: LiveEvent, revision: number): MeetupView | null {
  const base = { ...m, revision };
  switch (ev.kind) {
    case 'participantJoined':
    case 'participantUpdated': {
      const known = m.participants.some((p) => p.id === ev.participant.id);
      return {
        ...base,
        participants: known
          ? m.participants.map((p) => (p.id === ev.participant.id ? ev.participant : p))
          : [...m.participants, ev.participant],
      };
    }
    case 'participantLeft':
      return { ...base, participants: m.participants.filter((p) => p.id !== ev.participantId) };
    case 'placeAdded':
      if (m.places.some((p) => p.id === ev.place.id)) return base;
      return { ...base, places: [...m.places, ev.place] };
    case 'placeUpdated':
      return { ...base, places: m.places.map((p) => (p.id === ev.place.id ? ev.place : p)) };
    case 'placeRemoved':
      return {
        ...base,
        places: m.places.filter((p) => p.id !== ev.placeId),
        participants: m.participants.map((p) =>
          p.placeVotes.includes(ev.placeId)
            ? { ...p, placeVotes: p.placeVotes.filter((v) => v !== ev.placeId) }
            : p,
        ),
      };
    case 'commentAdded':
      if (m.comments.some((c) => c.id === ev.comment.id)) return base;
      return { ...base, comments: [...m.comments, ev.comment] };
    case 'commentRemoved':
      return { ...base, comments: m.comments.filter((c) => c.id !== ev.commentId) };
    case 'meetupUpdated':
    case 'meetupFinalized':
      return withChanges(base, ev.changes);
    case 'meetupDeleted':
      return null;
    default:
      return base;
  }
}

/** Absent: unchanged; null: removed (the view then leaves the field out, as the server does). */
function withChanges(m: MeetupView, c: MeetupChanges): MeetupView {
  const next: MeetupView = { ...m, status: c.status, updatedAt: c.updatedAt };
  if (c.title != null) next.title = c.title;
  if (c.allowParticipantPlaces != null) next.allowParticipantPlaces = c.allowParticipantPlaces;
  if (c.description === null) delete next.description;
  else if (c.description !== undefined) next.description = c.description;
  if (c.deadline === null) delete next.deadline;
  else if (c.deadline !== undefined) next.deadline = c.deadline;
  if (c.decision === null) delete next.decision;
  else if (c.decision !== undefined) next.decision = stripNulls(c.decision);
  return next;
}

function stripNulls<T extends object>(o: T) {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null)) as {
    [K in keyof T]: Exclude<T[K], null>;
  };
}

/**
 * Names per slot and place, scores and ranking, from the participants — the server's
 * `meetup_view`: participants in list order, yes = 1 and maybe = ½, every slot and place ranked
 * by score (ties keep their order).
 */
export function withDerived(m: MeetupView): MeetupView {
  const slotIndex = new Map(m.slots.map((s, i) => [s.id, i]));
  const yes: string[][] = m.slots.map(() => []);
  const maybe: string[][] = m.slots.map(() => []);
  const placeIndex = new Map(m.places.map((p, i) => [p.id, i]));
  const voters: string[][] = m.places.map(() => []);
  for (const p of m.participants) {
    for (const [slotId, answer] of Object.entries(p.availability)) {
      const i = slotIndex.get(slotId);
      if (i === undefined) continue;
      (answer === 'yes' ? yes : maybe)[i].push(p.name);
    }
    for (const placeId of p.placeVotes) {
      const i = placeIndex.get(placeId);
      if (i !== undefined) voters[i].push(p.name);
    }
  }
  const slots = m.slots.map((s, i) => ({ ...s, yes: yes[i], maybe: maybe[i], score: yes[i].length + maybe[i].length * 0.5 }));
  const places = m.places.map((p, i) => ({ ...p, voters: voters[i] }));
  const ranked = <T extends { id: string }>(items: T[], score: (t: T) => number) =>
    items
      .map((item, i) => ({ id: item.id, i, score: score(item) }))
      .sort((a, b) => b.score - a.score || a.i - b.i)
      .map((x) => x.id);
  return {
    ...m,
    slots,
    places,
    ranking: { slots: ranked(slots, (s) => s.score), places: ranked(places, (p) => p.voters.length) },
  };
}
