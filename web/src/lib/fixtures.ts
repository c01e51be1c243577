import type { MeetupView, Participant, Slot } from '../api/types';

export function slot(id: string, start: string, minutes = 60): Slot {
  const end = new Date(Date.parse(start) + minutes * 60_000).toISOString();
  return { id, start, end, yes: [], maybe: [], score: 0 };
}

export function person(id: string, name: string, availability: Participant['availability'] = {}, placeVotes: string[] = []): Participant {
  return { id, name, availability, placeVotes, isOrganizer: false, joinedAt: '2026-06-01T10:00:00Z' };
}

export function meetup(over: Partial<MeetupView> = {}): MeetupView {
  return {
    id: 'm1',
    title: 'Friday pints',
    organizerName: 'Anna',
    timeZone: 'Europe/Berlin',
    slotMinutes: 60,
    status: 'open',
    allowParticipantPlaces: true,
    revision: 1,
    createdAt: '2026-06-01T10:00:00Z',
    updatedAt: '2026-06-01T10:00:00Z',
    slots: [
      slot('s1', '2026-06-12T16:00:00Z'),
      slot('s2', '2026-06-12T17:00:00Z'),
      slot('s3', '2026-06-12T18:00:00Z'),
      slot('s4', '2026-06-13T16:00:00Z'),
    ],
    places: [
      { id: 'p1', name: 'The Tipsy Cow', addedBy: 'Anna', voters: [] },
      { id: 'p2', name: 'Hop House', addedBy: 'Anna', voters: [] },
    ],
    participants: [],
    comments: [],
    ranking: { slots: [], places: [] },
    ...over,
  };
}
