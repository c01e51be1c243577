import { describe, expect, it } from 'vitest';
import { applyEvent } from './live';
import { meetup, person } from './fixtures';

describe('applying live events', () => {
  const base = meetup({ participants: [person('a', 'Anna', {}, ['p1'])] });

  it('adds a joined participant once and bumps the revision', () => {
    const bob = person('b', 'Bob');
    const m1 = applyEvent(base, { kind: 'participantJoined', participant: bob }, 2)!;
    expect(m1.participants.map((p) => p.name)).toEqual(['Anna', 'Bob']);
    expect(m1.revision).toBe(2);
    const m2 = applyEvent(m1, { kind: 'participantJoined', participant: bob }, 3)!;
    expect(m2.participants).toHaveLength(2);
  });

  it('replaces an updated participant (availability and votes)', () => {
    const anna = person('a', 'Anna', { s1: 'yes' }, ['p2']);
    const m = applyEvent(base, { kind: 'participantUpdated', participant: anna }, 2)!;
    expect(m.participants[0].availability).toEqual({ s1: 'yes' });
    expect(m.participants[0].placeVotes).toEqual(['p2']);
  });

  it('removes a participant who left', () => {
    const m = applyEvent(base, { kind: 'participantLeft', participantId: 'a' }, 2)!;
    expect(m.participants).toEqual([]);
  });

  it('drops votes for a removed place', () => {
    const m = applyEvent(base, { kind: 'placeRemoved', placeId: 'p1' }, 2)!;
    expect(m.places.map((p) => p.id)).toEqual(['p2']);
    expect(m.participants[0].placeVotes).toEqual([]);
  });

  it('adds and removes places and comments', () => {
    let m = applyEvent(base, { kind: 'placeAdded', place: { id: 'p3', name: 'Bar', addedBy: 'Anna', voters: [] } }, 2)!;
    expect(m.places).toHaveLength(3);
    m = applyEvent(m, { kind: 'placeUpdated', place: { id: 'p3', name: 'Bar 2', addedBy: 'Anna', voters: [] } }, 3)!;
    expect(m.places[2].name).toBe('Bar 2');
    m = applyEvent(m, { kind: 'commentAdded', comment: { id: 'c1', author: 'Anna', text: 'Prost!', createdAt: '2026-06-01T10:00:00Z' } }, 4)!;
    expect(m.comments).toHaveLength(1);
    m = applyEvent(m, { kind: 'commentRemoved', commentId: 'c1' }, 5)!;
    expect(m.comments).toHaveLength(0);
  });

  it('applies only the meetup fields an update names; null removes one', () => {
    const withExtras = { ...base, description: 'Bring friends', deadline: '2026-06-10T18:00:00Z' };
    const m = applyEvent(
      withExtras,
      { kind: 'meetupUpdated', changes: { title: 'Saturday pints', description: null, status: 'open', updatedAt: '2026-06-02T10:00:00Z' } },
      2,
    )!;
    expect(m.title).toBe('Saturday pints');
    expect('description' in m).toBe(false);
    expect(m.deadline).toBe('2026-06-10T18:00:00Z');
    expect(m.allowParticipantPlaces).toBe(true);
    expect(m.updatedAt).toBe('2026-06-02T10:00:00Z');
    expect(m.participants).toBe(withExtras.participants);
    const closed = applyEvent(m, { kind: 'meetupUpdated', changes: { deadline: null, allowParticipantPlaces: false, status: 'closed', updatedAt: '2026-06-02T11:00:00Z' } }, 3)!;
    expect('deadline' in closed).toBe(false);
    expect(closed.allowParticipantPlaces).toBe(false);
    expect(closed.status).toBe('closed');
  });

  it('takes the decision on finalize, drops it on reopen, and null on delete', () => {
    const decision = {
      startSlotId: 's1', endSlotId: 's2', start: '2026-06-12T16:00:00Z', end: '2026-06-12T18:00:00Z',
      placeId: 'p1', note: null, decidedAt: '2026-06-02T10:00:00Z',
    };
    const fin = applyEvent(base, { kind: 'meetupFinalized', changes: { status: 'finalized', decision, updatedAt: '2026-06-02T10:00:00Z' } }, 2)!;
    expect(fin.status).toBe('finalized');
    expect(fin.revision).toBe(2);
    const { note: _, ...served } = decision;
    expect(fin.decision).toStrictEqual(served); // a null field is left out, as in views
    const reopened = applyEvent(fin, { kind: 'meetupUpdated', changes: { status: 'open', decision: null, updatedAt: '2026-06-02T11:00:00Z' } }, 3)!;
    expect(reopened.status).toBe('open');
    expect('decision' in reopened).toBe(false);
    expect(applyEvent(base, { kind: 'meetupDeleted' }, 2)).toBeNull();
  });

  it('recomputes names per slot and place, scores and ranking as the server does', () => {
    const m = applyEvent(
      base,
      { kind: 'participantJoined', participant: person('b', 'Bob', { s2: 'yes', s3: 'maybe' }, ['p2', 'gone']) },
      2,
    )!;
    const u = applyEvent(m, { kind: 'participantUpdated', participant: person('a', 'Anna', { s3: 'yes', nope: 'yes' }, ['p2']) }, 3)!;
    expect(u.slots.map((s) => [s.id, s.yes, s.maybe, s.score])).toEqual([
      ['s1', [], [], 0],
      ['s2', ['Bob'], [], 1],
      ['s3', ['Anna'], ['Bob'], 1.5],
      ['s4', [], [], 0],
    ]);
    expect(u.places.map((p) => p.voters)).toEqual([[], ['Anna', 'Bob']]);
    expect(u.ranking).toEqual({ slots: ['s3', 's2', 's1', 's4'], places: ['p2', 'p1'] });
  });
});
