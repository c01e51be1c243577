import { TZDate } from '@date-fns/tz';

/** The minimal slot shape the grid needs. */
export interface SlotLike {
  id: string;
  start: string;
  end: string;
}

export interface TimeGrid {
  /** Calendar days in the viewer's zone ("YYYY-MM-DD"), one column each. */
  columns: string[];
  /** Local minute-of-day (0..1439) of each row, in display order. */
  rows: number[];
  /** cells[row][col] = slot id, or null where that day has no slot at that time. */
  cells: (string | null)[][];
  /** Where each slot sits. */
  pos: Record<string, { row: number; col: number }>;
  zone: string;
}

const DAY = 1440;

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** "YYYY-MM-DD" of the calendar day `offset` days after y-m-d. */
export function dateKey(y: number, m0: number, d: number, offset = 0): string {
  const dt = new Date(Date.UTC(y, m0, d + offset));
  return `${dt.getUTCFullYear()}-${pad(dt.getUTCMonth() + 1)}-${pad(dt.getUTCDate())}`;
}

/** Wall-clock parts of an instant in an IANA zone. */
export function localParts(iso: string | number, zone: string) {
  const t = new TZDate(typeof iso === 'number' ? iso : Date.parse(iso), zone);
  return {
    y: t.getFullYear(),
    m0: t.getMonth(),
    d: t.getDate(),
    minute: t.getHours() * 60 + t.getMinutes(),
  };
}

/**
 * Lays slots out as days × times in `zone`. An evening that crosses midnight stays in one column:
 * the "day" starts after the largest gap in the local times of day, so a 20:00–02:00 window (or a
 * Berlin evening seen from Tokyo) is not split over two dates. Days whose local times shift
 * (a daylight-saving change in one zone but not the other) get their own rows, and the missing
 * cells are null.
 */
export function buildGrid(slots: SlotLike[], zone: string): TimeGrid {
  const parts = slots.map((s) => ({ id: s.id, ...localParts(s.start, zone) }));
  const minutes = [...new Set(parts.map((p) => p.minute))].sort((a, b) => a - b);
  let dayStart = 0;
  if (minutes.length > 0) {
    let bestGap = -1;
    for (let i = 0; i < minutes.length; i++) {
      const next = i + 1 < minutes.length ? minutes[i + 1] : minutes[0] + DAY;
      const gap = next - minutes[i];
      if (gap > bestGap) {
        bestGap = gap;
        dayStart = next % DAY;
      }
    }
  }
  const placed = parts.map((p) => {
    const before = p.minute < dayStart;
    return {
      id: p.id,
      col: dateKey(p.y, p.m0, p.d, before ? -1 : 0),
      shifted: (p.minute - dayStart + DAY) % DAY,
    };
  });
  const columns = [...new Set(placed.map((p) => p.col))].sort();
  const shiftedRows = [...new Set(placed.map((p) => p.shifted))].sort((a, b) => a - b);
  const rows = shiftedRows.map((s) => (s + dayStart) % DAY);
  const colIndex = new Map(columns.map((c, i) => [c, i]));
  const rowIndex = new Map(shiftedRows.map((s, i) => [s, i]));
  const cells: (string | null)[][] = rows.map(() => columns.map(() => null));
  const pos: TimeGrid['pos'] = {};
  for (const p of placed) {
    const row = rowIndex.get(p.shifted)!;
    const col = colIndex.get(p.col)!;
    if (cells[row][col] === null) {
      cells[row][col] = p.id;
      pos[p.id] = { row, col };
    }
  }
  return { columns, rows, cells, pos, zone };
}

/** The viewer's IANA zone (falls back to UTC). */
export function viewerZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** "UTC+3", "UTC-4", "UTC+5:45" for an instant in a zone. */
export function utcOffsetLabel(zone: string, at: number = Date.now()): string {
  const t = new TZDate(at, zone);
  const off = -t.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  const h = Math.floor(abs / 60);
  const m = abs % 60;
  return `UTC${sign}${h}${m ? ':' + pad(m) : ''}`;
}

/**
 * Minute-of-day as a localized time, e.g. "19:00" or "7:00 PM". `compact` drops ":00" where the
 * language uses AM/PM ("7 PM"), so the time column of the grid stays narrow.
 */
export function formatMinute(minute: number, locale: string, compact = false): string {
  const d = new Date(Date.UTC(2000, 0, 1, Math.floor(minute / 60), minute % 60));
  const fmt = new Intl.DateTimeFormat(locale, { hour: 'numeric', minute: '2-digit', timeZone: 'UTC' });
  if (compact && minute % 60 === 0 && fmt.formatToParts(d).some((p) => p.type === 'dayPeriod')) {
    return new Intl.DateTimeFormat(locale, { hour: 'numeric', timeZone: 'UTC' }).format(d);
  }
  return fmt.format(d);
}

/** A day key as a short localized weekday and date. */
export function formatDayKey(key: string, locale: string) {
  const [y, m, d] = key.split('-').map(Number);
  const dt = new Date(Date.UTC(y, m - 1, d, 12));
  const weekday = new Intl.DateTimeFormat(locale, { weekday: 'short', timeZone: 'UTC' }).format(dt);
  const date = new Intl.DateTimeFormat(locale, {
    day: 'numeric',
    month: 'numeric',
    timeZone: 'UTC',
  }).format(dt);
  const long = new Intl.DateTimeFormat(locale, {
    weekday: 'long',
    day: 'numeric',
    month: 'long',
    timeZone: 'UTC',
  }).format(dt);
  return { weekday, date, long };
}

/** A slot (or a range) in the viewer's zone: "Fri 12 Jun, 19:00–21:00". */
export function formatRange(startIso: string, endIso: string, zone: string, locale: string): string {
  const start = new Date(startIso);
  const end = new Date(endIso);
  const day = new Intl.DateTimeFormat(locale, {
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    timeZone: zone,
  }).format(start);
  const time = new Intl.DateTimeFormat(locale, {
    hour: 'numeric',
    minute: '2-digit',
    timeZone: zone,
  });
  return `${day}, ${time.format(start)}–${time.format(end)}`;
}

/** The next `n` calendar days from today in `zone`, as "YYYY-MM-DD". */
export function nextDays(n: number, zone: string, now: number = Date.now()): string[] {
  const p = localParts(now, zone);
  return Array.from({ length: n }, (_, i) => dateKey(p.y, p.m0, p.d, i));
}
