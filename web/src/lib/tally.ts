import type { MeetupView, Participant, Place, Slot } from '../api/types';

export interface SlotTally {
  yes: string[];
  maybe: string[];
  /** yes = 1, maybe = 0.5 (as in the API). */
  score: number;
}

/** Names per slot, derived from the participants (join order), so live events stay exact. */
export function slotTallies(meetup: Pick<MeetupView, 'slots' | 'participants'>) {
  const out = new Map<string, SlotTally>();
  for (const s of meetup.slots) out.set(s.id, { yes: [], maybe: [], score: 0 });
  for (const p of meetup.participants) {
    for (const [slotId, a] of Object.entries(p.availability)) {
      const t = out.get(slotId);
      if (!t) continue;
      if (a === 'yes') {
        t.yes.push(p.name);
        t.score += 1;
      } else {
        t.maybe.push(p.name);
        t.score += 0.5;
      }
    }
  }
  return out;
}

/** Voter names per place (join order). */
export function placeVoters(meetup: Pick<MeetupView, 'places' | 'participants'>) {
  const out = new Map<string, string[]>();
  for (const pl of meetup.places) out.set(pl.id, []);
  for (const p of meetup.participants) {
    for (const id of p.placeVotes) out.get(id)?.push(p.name);
  }
  return out;
}

/** Slots best first: score desc, then earliest. Only slots someone can make. */
export function rankSlots(slots: Slot[], tallies: Map<string, SlotTally>): Slot[] {
  return slots
    .filter((s) => (tallies.get(s.id)?.score ?? 0) > 0)
    .sort((a, b) => {
      const d = (tallies.get(b.id)?.score ?? 0) - (tallies.get(a.id)?.score ?? 0);
      return d !== 0 ? d : Date.parse(a.start) - Date.parse(b.start);
    });
}

/** Places best first: votes desc, then the order they were added. */
export function rankPlaces(places: Place[], voters: Map<string, string[]>): Place[] {
  return places
    .map((p, i) => ({ p, i, n: voters.get(p.id)?.length ?? 0 }))
    .sort((a, b) => b.n - a.n || a.i - b.i)
    .map((x) => x.p);
}

/** Ids of the slots with the top score (none when nobody answered). */
export function bestSlotIds(tallies: Map<string, SlotTally>): Set<string> {
  let max = 0;
  for (const t of tallies.values()) max = Math.max(max, t.score);
  const out = new Set<string>();
  if (max === 0) return out;
  for (const [id, t] of tallies) if (t.score === max) out.add(id);
  return out;
}

/** Ids of the places with the most votes (none when nobody voted). */
export function bestPlaceIds(voters: Map<string, string[]>): Set<string> {
  let max = 0;
  for (const v of voters.values()) max = Math.max(max, v.length);
  const out = new Set<string>();
  if (max === 0) return out;
  for (const [id, v] of voters) if (v.length === max) out.add(id);
  return out;
}

/**
 * Slots where every one of `names` can come (yes, or maybe when `countMaybe`).
 * An empty `names` means everyone who joined. Returns null when there is nobody to filter by.
 */
export function slotsWhereAllCan(
  tallies: Map<string, SlotTally>,
  participants: Participant[],
  names: string[],
  countMaybe = true,
): Set<string> | null {
  const who = names.length > 0 ? names : participants.map((p) => p.name);
  if (who.length === 0) return null;
  const out = new Set<string>();
  for (const [id, t] of tallies) {
    const ok = who.every((n) => t.yes.includes(n) || (countMaybe && t.maybe.includes(n)));
    if (ok) out.add(id);
  }
  return out;
}

/**
 * Grows a slot into the longest run of back-to-back slots around it that keep its score:
 * the default range the organizer finalizes.
 */
export function bestRun(
  slots: Slot[],
  tallies: Map<string, SlotTally>,
  slotId: string,
): { startSlotId: string; endSlotId: string } {
  const i = slots.findIndex((s) => s.id === slotId);
  if (i < 0) return { startSlotId: slotId, endSlotId: slotId };
  const score = tallies.get(slotId)?.score ?? 0;
  let a = i;
  let b = i;
  const same = (j: number) => (tallies.get(slots[j].id)?.score ?? 0) === score;
  while (a > 0 && adjacent(slots[a - 1], slots[a]) && same(a - 1)) a--;
  while (b < slots.length - 1 && adjacent(slots[b], slots[b + 1]) && same(b + 1)) b++;
  return { startSlotId: slots[a].id, endSlotId: slots[b].id };
}

/** Whether slot `b` starts exactly when `a` ends (compared as instants, not strings). */
export function adjacent(a: { end: string }, b: { start: string }): boolean {
  return Date.parse(a.end) === Date.parse(b.start);
}

/** A run of back-to-back slots where exactly the same people can come (yes and maybe alike). */
export interface SlotRange {
  startSlotId: string;
  endSlotId: string;
  slotIds: string[];
  start: string;
  end: string;
  yes: string[];
  maybe: string[];
  score: number;
}

const sameNames = (a: string[], b: string[]) => a.length === b.length && a.every((n, i) => n === b[i]);

/**
 * Adjacent slots with the same people merged into one range ("Fri 20:00–23:00" instead of three
 * hour rows), ranked by score, then the longer range, then the earlier. Ranges nobody can come to
 * are left out.
 */
export function bestRanges(slots: Slot[], tallies: Map<string, SlotTally>): SlotRange[] {
  const sorted = [...slots].sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
  const runs: SlotRange[] = [];
  let cur: SlotRange | null = null;
  for (const s of sorted) {
    const tl = tallies.get(s.id) ?? { yes: [], maybe: [], score: 0 };
    if (
      cur &&
      Date.parse(cur.end) === Date.parse(s.start) &&
      sameNames(cur.yes, tl.yes) &&
      sameNames(cur.maybe, tl.maybe)
    ) {
      cur.endSlotId = s.id;
      cur.end = s.end;
      cur.slotIds.push(s.id);
      continue;
    }
    cur = {
      startSlotId: s.id,
      endSlotId: s.id,
      slotIds: [s.id],
      start: s.start,
      end: s.end,
      yes: tl.yes,
      maybe: tl.maybe,
      score: tl.score,
    };
    runs.push(cur);
  }
  return runs
    .filter((r) => r.score > 0)
    .sort(
      (a, b) =>
        b.score - a.score ||
        b.slotIds.length - a.slotIds.length ||
        Date.parse(a.start) - Date.parse(b.start),
    );
}
