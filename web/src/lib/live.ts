import type { LiveEvent, MeetupView } from '../api/types';

/**
 * Applies one live event to the cached meetup. Returns null when the meetup was deleted.
 * Tallies are derived from participants on render, so only the lists change here.
 */
export function applyEvent(m: MeetupView, ev: LiveEvent, revision: number): MeetupView | null {
  const base = { ...m, revision };
  switch (ev.kind) {
    case 'participantJoined':
      if (m.participants.some((p) => p.id === ev.participant.id)) {
        return {
          ...base,
          participants: m.participants.map((p) =>
            p.id === ev.participant.id ? ev.participant : p,
          ),
        };
      }
      return { ...base, participants: [...m.participants, ev.participant] };
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
      return { ...ev.meetup, revision };
    case 'meetupDeleted':
      return null;
    default:
      return base;
  }
}
