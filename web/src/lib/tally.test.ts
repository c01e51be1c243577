import { describe, expect, it } from 'vitest';
import { meetup, person } from './fixtures';
import { bestPlaceIds, bestRanges, bestRun, bestSlotIds, placeVoters, rankPlaces, rankSlots, slotTallies, slotsWhereAllCan } from './tally';

const m = meetup({
  participants: [
    person('a', 'Anna', { s1: 'yes', s2: 'yes', s3: 'maybe' }, ['p2']),
    person('b', 'Bob', { s2: 'yes', s3: 'yes' }, ['p1', 'p2']),
    person('c', 'Carl', { s2: 'maybe', s4: 'yes' }, []),
  ],
});

describe('tallies', () => {
  it('lists who can come per slot, in join order, with yes = 1 and maybe = 0.5', () => {
    const t = slotTallies(m);
    expect(t.get('s2')).toEqual({ yes: ['Anna', 'Bob'], maybe: ['Carl'], score: 2.5 });
    expect(t.get('s3')).toEqual({ yes: ['Bob'], maybe: ['Anna'], score: 1.5 });
    expect(t.get('s1')).toEqual({ yes: ['Anna'], maybe: [], score: 1 });
  });

  it('ignores availability for unknown slots', () => {
    const t = slotTallies(meetup({ participants: [person('x', 'X', { nope: 'yes' })] }));
    expect([...t.values()].every((v) => v.score === 0)).toBe(true);
  });

  it('ranks slots by score, then earliest, and finds the best', () => {
    const t = slotTallies(m);
    expect(rankSlots(m.slots, t).map((s) => s.id)).toEqual(['s2', 's3', 's1', 's4']);
    expect([...bestSlotIds(t)]).toEqual(['s2']);
  });

  it('has no best slot when nobody answered', () => {
    expect(bestSlotIds(slotTallies(meetup())).size).toBe(0);
    expect(rankSlots(meetup().slots, slotTallies(meetup()))).toEqual([]);
  });

  it('counts place votes with names and ranks places (ties keep the order added)', () => {
    const v = placeVoters(m);
    expect(v.get('p2')).toEqual(['Anna', 'Bob']);
    expect(v.get('p1')).toEqual(['Bob']);
    expect(rankPlaces(m.places, v).map((p) => p.id)).toEqual(['p2', 'p1']);
    expect([...bestPlaceIds(v)]).toEqual(['p2']);
    const none = placeVoters(meetup());
    expect(rankPlaces(meetup().places, none).map((p) => p.id)).toEqual(['p1', 'p2']);
    expect(bestPlaceIds(none).size).toBe(0);
  });

  it('filters slots where everyone can come', () => {
    const t = slotTallies(m);
    expect([...slotsWhereAllCan(t, m.participants, [])!]).toEqual(['s2']);
    expect([...slotsWhereAllCan(t, m.participants, [], false)!]).toEqual([]);
  });

  it('filters slots where selected people can come', () => {
    const t = slotTallies(m);
    expect([...slotsWhereAllCan(t, m.participants, ['Anna', 'Bob'])!].sort()).toEqual(['s2', 's3']);
    expect([...slotsWhereAllCan(t, m.participants, ['Anna', 'Bob'], false)!]).toEqual(['s2']);
    expect([...slotsWhereAllCan(t, m.participants, ['Carl'])!].sort()).toEqual(['s2', 's4']);
    expect(slotsWhereAllCan(t, [], [])).toBeNull();
  });

  it('grows the best slot into a run of back-to-back slots with the same score', () => {
    const mm = meetup({
      participants: [person('a', 'Anna', { s1: 'yes', s2: 'yes', s3: 'yes', s4: 'yes' })],
    });
    const t = slotTallies(mm);
    // s4 is on another day (not back to back with s3).
    expect(bestRun(mm.slots, t, 's2')).toEqual({ startSlotId: 's1', endSlotId: 's3' });
    expect(bestRun(mm.slots, t, 's4')).toEqual({ startSlotId: 's4', endSlotId: 's4' });
  });
});

describe('bestRanges', () => {
  it('merges back-to-back slots with the same people into one range', () => {
    const mm = meetup({
      participants: [
        person('a', 'Anna', { s1: 'yes', s2: 'yes', s3: 'yes', s4: 'yes' }),
        person('b', 'Bob', { s1: 'yes', s2: 'yes', s3: 'yes' }),
      ],
    });
    const r = bestRanges(mm.slots, slotTallies(mm));
    // s1–s3 are one evening (16:00–19:00 UTC); s4 is the next day with Anna only.
    expect(r.map((x) => x.slotIds)).toEqual([['s1', 's2', 's3'], ['s4']]);
    expect(r[0]).toMatchObject({ start: mm.slots[0].start, end: mm.slots[2].end, yes: ['Anna', 'Bob'], score: 2 });
  });

  it('splits where the people change, and ranks by score then length', () => {
    const r = bestRanges(m.slots, slotTallies(m));
    expect(r.map((x) => x.slotIds)).toEqual([['s2'], ['s3'], ['s1'], ['s4']]);
  });

  it('leaves out what nobody can come to', () => {
    expect(bestRanges(meetup().slots, slotTallies(meetup()))).toEqual([]);
  });
});
