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

  it('takes the whole meetup on update/finalize, and null on delete', () => {
    const fin = { ...base, status: 'finalized' as const, revision: 9 };
    expect(applyEvent(base, { kind: 'meetupFinalized', meetup: fin }, 2)!.status).toBe('finalized');
    expect(applyEvent(base, { kind: 'meetupFinalized', meetup: fin }, 2)!.revision).toBe(2);
    expect(applyEvent(base, { kind: 'meetupDeleted' }, 2)).toBeNull();
  });
});
