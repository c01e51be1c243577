import { describe, expect, it } from 'vitest';
import { buildGrid, dateKey, formatMinute, localParts, nextDays, utcOffsetLabel } from './timegrid';

/** Hourly slots for a daily local window, built from UTC instants the way the API stores them. */
function hourly(startsUtc: string[]) {
  return startsUtc.map((s, i) => ({
    id: `s${i}`,
    start: s,
    end: new Date(Date.parse(s) + 3600_000).toISOString(),
  }));
}

/** Berlin 18:00–23:00 (5 slots) for each given date and Berlin UTC offset in hours. */
function berlinEvenings(days: [string, number][]) {
  const starts: string[] = [];
  for (const [day, off] of days) {
    for (let h = 18; h < 23; h++) {
      const [y, m, d] = day.split('-').map(Number);
      starts.push(new Date(Date.UTC(y, m - 1, d, h - off)).toISOString());
    }
  }
  return hourly(starts);
}

const hhmm = (min: number) => `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;

describe('time grid in the viewer’s zone', () => {
  it('lays out a Berlin week for a Berlin viewer as days × evening hours', () => {
    const slots = berlinEvenings([['2026-06-08', 2], ['2026-06-09', 2], ['2026-06-10', 2]]);
    const g = buildGrid(slots, 'Europe/Berlin');
    expect(g.columns).toEqual(['2026-06-08', '2026-06-09', '2026-06-10']);
    expect(g.rows.map(hhmm)).toEqual(['18:00', '19:00', '20:00', '21:00', '22:00']);
    expect(g.cells[0][0]).toBe('s0');
    expect(g.cells[4][2]).toBe('s14');
    expect(g.pos.s6).toEqual({ row: 1, col: 1 });
  });

  it('shifts the same slots for a viewer in Moscow (one hour later)', () => {
    const slots = berlinEvenings([['2026-06-08', 2]]);
    const g = buildGrid(slots, 'Europe/Moscow');
    expect(g.rows.map(hhmm)).toEqual(['19:00', '20:00', '21:00', '22:00', '23:00']);
    expect(g.columns).toEqual(['2026-06-08']);
  });

  it('keeps an evening in one column when it crosses midnight in the viewer’s zone (Tokyo)', () => {
    // Berlin 18:00–23:00 = Tokyo 01:00–06:00 the next day: no split, the day is the Tokyo date.
    const slots = berlinEvenings([['2026-06-08', 2], ['2026-06-09', 2]]);
    const g = buildGrid(slots, 'Asia/Tokyo');
    expect(g.columns).toEqual(['2026-06-09', '2026-06-10']);
    expect(g.rows.map(hhmm)).toEqual(['01:00', '02:00', '03:00', '04:00', '05:00']);
  });

  it('keeps a window that crosses midnight (21:00–02:00) in one column per evening', () => {
    const starts: string[] = [];
    for (const d of [8, 9]) for (const h of [21, 22, 23, 24, 25]) starts.push(new Date(Date.UTC(2026, 5, d, h - 2)).toISOString());
    const g = buildGrid(hourly(starts), 'Europe/Berlin');
    expect(g.columns).toEqual(['2026-06-08', '2026-06-09']);
    expect(g.rows.map(hhmm)).toEqual(['21:00', '22:00', '23:00', '00:00', '01:00']);
    expect(g.cells.every((r) => r.every((c) => c !== null))).toBe(true);
  });

  it('handles a DST week: Europe switches on 29 March 2026, New York already did on 8 March', () => {
    // Berlin is UTC+1 until Sat 28 March, UTC+2 from Sun 29 March.
    const slots = berlinEvenings([
      ['2026-03-27', 1],
      ['2026-03-28', 1],
      ['2026-03-29', 2],
      ['2026-03-30', 2],
    ]);
    // The Berlin viewer sees the same 18–23 rows every day.
    const berlin = buildGrid(slots, 'Europe/Berlin');
    expect(berlin.rows.map(hhmm)).toEqual(['18:00', '19:00', '20:00', '21:00', '22:00']);
    expect(berlin.cells.flat().filter((c) => c === null)).toHaveLength(0);
    // A New York viewer (UTC-4 all week) sees 13:00 before the switch and 12:00 after it.
    const ny = buildGrid(slots, 'America/New_York');
    expect(ny.columns).toEqual(['2026-03-27', '2026-03-28', '2026-03-29', '2026-03-30']);
    expect(ny.rows.map(hhmm)).toEqual(['12:00', '13:00', '14:00', '15:00', '16:00', '17:00']);
    const col = (c: number) => ny.cells.map((r) => r[c]);
    expect(col(0)[0]).toBeNull(); // Friday starts at 13:00
    expect(col(0)[5]).not.toBeNull();
    expect(col(2)[0]).not.toBeNull(); // Sunday starts at 12:00
    expect(col(2)[5]).toBeNull();
    expect(Object.keys(ny.pos)).toHaveLength(slots.length);
  });

  it('reads wall-clock parts across a DST change', () => {
    expect(localParts('2026-03-29T00:30:00Z', 'Europe/Berlin').minute).toBe(90); // 01:30 CET
    expect(localParts('2026-03-29T01:30:00Z', 'Europe/Berlin').minute).toBe(210); // 03:30 CEST
    expect(utcOffsetLabel('Europe/Berlin', Date.parse('2026-03-28T12:00:00Z'))).toBe('UTC+1');
    expect(utcOffsetLabel('Europe/Berlin', Date.parse('2026-03-29T12:00:00Z'))).toBe('UTC+2');
    expect(utcOffsetLabel('Asia/Kathmandu', Date.parse('2026-03-29T12:00:00Z'))).toBe('UTC+5:45');
    expect(utcOffsetLabel('America/New_York', Date.parse('2026-03-29T12:00:00Z'))).toBe('UTC-4');
  });

  it('counts the next days in a zone and across month ends', () => {
    expect(nextDays(3, 'Europe/Berlin', Date.parse('2026-01-30T23:30:00Z'))).toEqual(['2026-01-31', '2026-02-01', '2026-02-02']);
    expect(nextDays(1, 'America/Los_Angeles', Date.parse('2026-01-01T05:00:00Z'))).toEqual(['2025-12-31']);
    expect(dateKey(2024, 1, 28, 1)).toBe('2024-02-29');
  });

  it('formats times in the language’s style', () => {
    expect(formatMinute(19 * 60, 'ru')).toBe('19:00');
    expect(formatMinute(19 * 60 + 30, 'en')).toMatch(/7:30\s?PM/);
    expect(formatMinute(19 * 60, 'en', true)).toMatch(/^7\s?PM$/);
    expect(formatMinute(19 * 60 + 30, 'en', true)).toMatch(/7:30\s?PM/);
    expect(formatMinute(19 * 60, 'ru', true)).toBe('19:00');
  });

  it('is empty without slots', () => {
    const g = buildGrid([], 'UTC');
    expect(g.columns).toEqual([]);
    expect(g.rows).toEqual([]);
  });
});
