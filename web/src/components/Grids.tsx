import {
  useCallback,
  useEffect,
  useRef,
  useState,
  type CSSProperties,
  type KeyboardEvent,
  type PointerEvent as RPointerEvent,
} from 'react';
import { useTranslation } from 'react-i18next';
import type { Availability } from '../api/types';
import {
  applyDrag,
  moveDrag,
  sameAvailability,
  startDrag,
  stepCell,
  type AvailabilityMap,
  type Brush,
  type Cell,
  type Drag,
} from '../lib/selection';
import type { SlotTally } from '../lib/tally';
import { formatDayKey, formatMinute, type TimeGrid } from '../lib/timegrid';

function useLabels(grid: TimeGrid, locale: string) {
  const days = grid.columns.map((c) => formatDayKey(c, locale));
  // Full times for screen readers; the visible column says ":30" between the hours.
  const times = grid.rows.map((r) => formatMinute(r, locale, true));
  const shortTimes = grid.rows.map((r, i) =>
    r % 60 && i > 0 ? `:${String(r % 60).padStart(2, '0')}` : times[i],
  );
  return { days, times, shortTimes };
}

function GridHead({ days }: { days: { weekday: string; date: string; long: string }[] }) {
  return (
    <thead>
      <tr>
        <th className="corner" aria-hidden="true" />
        {days.map((d, i) => (
          <th key={i} scope="col" className="day-head" title={d.long}>
            <span className="wd">{d.weekday}</span>
            <span className="dt">{d.date}</span>
          </th>
        ))}
      </tr>
    </thead>
  );
}

function focusCell(table: HTMLTableElement | null, c: Cell) {
  table?.querySelector<HTMLElement>(`[data-r="${c.row}"][data-c="${c.col}"]`)?.focus();
}

function cellAt(table: HTMLTableElement | null, x: number, y: number): Cell | null {
  const el = document.elementFromPoint(x, y)?.closest<HTMLElement>('[data-r]');
  if (!el || !table || !table.contains(el)) return null;
  return { row: Number(el.dataset.r), col: Number(el.dataset.c) };
}

/** My availability: click, drag (mouse, pen, touch) or keyboard to paint yes / maybe / erase. */
export function PaintGrid({
  grid,
  value,
  brush,
  disabled,
  locale,
  onChange,
}: {
  grid: TimeGrid;
  value: AvailabilityMap;
  brush: Brush;
  disabled?: boolean;
  locale: string;
  onChange: (next: AvailabilityMap) => void;
}) {
  const { t } = useTranslation();
  const { days, times, shortTimes } = useLabels(grid, locale);
  const table = useRef<HTMLTableElement>(null);
  const [drag, setDrag] = useState<Drag | null>(null);
  const dragRef = useRef<Drag | null>(null);
  const [focus, setFocus] = useState<Cell>({ row: 0, col: 0 });
  const shown = drag ? applyDrag(value, drag, grid.cells) : value;

  const commit = useCallback(() => {
    const d = dragRef.current;
    dragRef.current = null;
    setDrag(null);
    if (!d) return;
    const next = applyDrag(value, d, grid.cells);
    if (!sameAvailability(next, value)) onChange(next);
  }, [value, grid.cells, onChange]);

  const dragging = drag !== null;
  useEffect(() => {
    if (!dragging) return;
    const move = (e: PointerEvent) => {
      const c = cellAt(table.current, e.clientX, e.clientY);
      if (!c || !dragRef.current) return;
      const next = moveDrag(dragRef.current, c);
      if (next !== dragRef.current) {
        dragRef.current = next;
        setDrag(next);
      }
    };
    const up = () => commit();
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
    window.addEventListener('pointercancel', up);
    return () => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      window.removeEventListener('pointercancel', up);
    };
  }, [dragging, commit]);

  const onPointerDown = (e: RPointerEvent<HTMLTableElement>) => {
    if (disabled || (e.pointerType === 'mouse' && e.button !== 0)) return;
    const el = (e.target as HTMLElement).closest<HTMLElement>('[data-r]');
    if (!el) return;
    const c = { row: Number(el.dataset.r), col: Number(el.dataset.c) };
    if (!grid.cells[c.row]?.[c.col]) return;
    e.preventDefault();
    // Touch pointers are captured by the first element; we hit-test ourselves instead.
    if (el.hasPointerCapture?.(e.pointerId)) el.releasePointerCapture(e.pointerId);
    const d = startDrag(value, grid.cells, c, brush);
    dragRef.current = d;
    setDrag(d);
    setFocus(c);
    el.focus({ preventScroll: true });
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTableElement>) => {
    const step = stepCell(focus, e.key, grid.rows.length, grid.columns.length);
    if (step) {
      e.preventDefault();
      setFocus(step);
      focusCell(table.current, step);
      return;
    }
    if ((e.key === ' ' || e.key === 'Enter') && !disabled) {
      e.preventDefault();
      if (!grid.cells[focus.row]?.[focus.col]) return;
      const d = startDrag(value, grid.cells, focus, brush);
      onChange(applyDrag(value, d, grid.cells));
    }
  };

  const label = (v: Availability | undefined) =>
    v === 'yes' ? t('when.yes') : v === 'maybe' ? t('when.maybe') : t('when.cellNone');

  return (
    <div className="grid-scroll">
      <table
        ref={table}
        className={`grid paint${disabled ? ' disabled' : ''}${drag ? ' dragging' : ''}`}
        role="grid"
        aria-label={t('when.gridLabel')}
        aria-readonly={disabled || undefined}
        onPointerDown={onPointerDown}
        onKeyDown={onKeyDown}
        onContextMenu={(e) => drag && e.preventDefault()}
      >
        <GridHead days={days} />
        <tbody>
          {grid.rows.map((minute, r) => (
            <tr key={r}>
              <th scope="row" className={`time-head${minute % 60 ? ' sub' : ''}`} aria-label={times[r]}>
                {shortTimes[r]}
              </th>
              {grid.columns.map((_, c) => {
                const id = grid.cells[r][c];
                const isFocus = focus.row === r && focus.col === c;
                if (!id) {
                  return (
                    <td key={c} className="cell none" data-r={r} data-c={c} tabIndex={isFocus ? 0 : -1} aria-disabled="true" />
                  );
                }
                const v = shown[id];
                return (
                  <td
                    key={c}
                    role="gridcell"
                    className={`cell ${v ?? 'empty'}`}
                    data-r={r}
                    data-c={c}
                    data-slot={id}
                    tabIndex={isFocus ? 0 : -1}
                    aria-selected={v === 'yes' || v === 'maybe'}
                    aria-label={t('when.cellMine', {
                      day: days[c].long,
                      time: times[r],
                      value: label(v),
                    })}
                    onFocus={() => setFocus({ row: r, col: c })}
                  >
                    <span aria-hidden="true">{v === 'yes' ? '✓' : v === 'maybe' ? '?' : ''}</span>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** "Anna" → "A", "Anna Berg" → "AB" (by grapheme, so emoji and accents stay whole). */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const first = (w: string) => Array.from(w)[0] ?? '';
  if (words.length === 0) return '?';
  const out = words.length > 1 ? first(words[0]) + first(words[words.length - 1]) : first(words[0]);
  return out.toUpperCase();
}

/** A stable pastel per name, so the same friend has the same colour in every cell. */
export function nameHue(name: string): number {
  let h = 0;
  for (const ch of name) h = (h * 31 + (ch.codePointAt(0) ?? 0)) % 360;
  return h;
}

/** The first `max` entries, or `max - 1` and a "+n" when there are more. */
function fit<T>(all: T[], max: number): { shown: T[]; more: number } {
  const shown = all.slice(0, all.length > max ? max - 1 : max);
  return { shown, more: all.length - shown.length };
}

function CellNames({ yes, maybe }: { yes: string[]; maybe: string[] }) {
  const all = [...yes.map((n) => ({ n, maybe: false })), ...maybe.map((n) => ({ n, maybe: true }))];
  // A phone cell is ~44 px wide: two initials (or one and "+n"); a desktop cell has three lines.
  const ini = fit(all, 2);
  const { shown, more } = fit(all, 3);
  return (
    <>
      <span className="initials">
        {ini.shown.map((x) => (
          <span
            key={x.n}
            className={`ini${x.maybe ? ' maybe' : ''}`}
            style={{ '--hue': nameHue(x.n) } as CSSProperties}
          >
            {initials(x.n)}
          </span>
        ))}
        {ini.more > 0 && <span className="ini more">+{ini.more}</span>}
      </span>
      <span className="names">
        {shown.map((x) => (
          <span key={x.n} className={`nm${x.maybe ? ' maybe' : ''}`}>
            {x.n}
            {x.maybe ? '?' : ''}
          </span>
        ))}
        {more > 0 && <span className="nm more">+{more}</span>}
      </span>
    </>
  );
}

/** Everyone's availability: a beer-glass heat map; each cell says how many and who. */
export function HeatGrid({
  grid,
  tallies,
  total,
  best,
  fits,
  selected,
  locale,
  onSelect,
}: {
  grid: TimeGrid;
  tallies: Map<string, SlotTally>;
  total: number;
  best: Set<string>;
  fits: Set<string> | null;
  selected: string | null;
  locale: string;
  onSelect: (slotId: string) => void;
}) {
  const { t } = useTranslation();
  const { days, times, shortTimes } = useLabels(grid, locale);
  const table = useRef<HTMLTableElement>(null);
  const showStars = best.size <= 6;
  const pos = selected ? grid.pos[selected] : undefined;
  const [focus, setFocus] = useState<Cell>(pos ?? { row: 0, col: 0 });
  const denom = Math.max(total, 1);

  const onKeyDown = (e: KeyboardEvent<HTMLTableElement>) => {
    const step = stepCell(focus, e.key, grid.rows.length, grid.columns.length);
    if (step) {
      e.preventDefault();
      setFocus(step);
      focusCell(table.current, step);
      const id = grid.cells[step.row]?.[step.col];
      if (id) onSelect(id);
    }
  };

  return (
    <div className="grid-scroll">
      <table ref={table} className="grid heat" role="grid" aria-label={t('when.heatLabel')} aria-readonly="true" onKeyDown={onKeyDown}>
        <GridHead days={days} />
        <tbody>
          {grid.rows.map((minute, r) => (
            <tr key={r}>
              <th scope="row" className={`time-head${minute % 60 ? ' sub' : ''}`} aria-label={times[r]}>
                {shortTimes[r]}
              </th>
              {grid.columns.map((_, c) => {
                const id = grid.cells[r][c];
                const isFocus = focus.row === r && focus.col === c;
                if (!id) return <td key={c} className="cell none" data-r={r} data-c={c} tabIndex={isFocus ? 0 : -1} />;
                const tl = tallies.get(id) ?? { yes: [], maybe: [], score: 0 };
                const n = tl.yes.length + tl.maybe.length;
                const fill = Math.round((tl.score / denom) * 100);
                const cls = [
                  'cell',
                  'heat-cell',
                  n === 0 ? 'nobody' : '',
                  best.has(id) ? 'best' : '',
                  best.has(id) && showStars ? 'star' : '',
                  fits && !fits.has(id) ? 'dim' : '',
                  selected === id ? 'selected' : '',
                ].join(' ');
                return (
                  <td
                    key={c}
                    role="gridcell"
                    className={cls}
                    data-r={r}
                    data-c={c}
                    data-slot={id}
                    data-count={n}
                    tabIndex={isFocus ? 0 : -1}
                    aria-selected={selected === id}
                    aria-label={t('when.cellHeat', {
                      day: days[c].long,
                      time: times[r],
                      yes: tl.yes.length ? `${tl.yes.length} (${tl.yes.join(', ')})` : 0,
                      maybe: tl.maybe.length ? `${tl.maybe.length} (${tl.maybe.join(', ')})` : 0,
                    })}
                    aria-controls="who-panel"
                    onClick={() => {
                      setFocus({ row: r, col: c });
                      onSelect(id);
                      // On a phone the full list is under the grid: bring it into view.
                      if (window.matchMedia?.('(max-width: 639px)').matches) {
                        document.getElementById('who-panel')?.scrollIntoView?.({ block: 'nearest', behavior: 'smooth' });
                      }
                    }}
                  >
                    <div className="glass" style={{ '--fill': `${fill}%` } as CSSProperties} aria-hidden="true">
                      {n > 0 && (
                        <span className="count">
                          {tl.yes.length > 0 && tl.yes.length}
                          {tl.maybe.length > 0 && <span className="maybe-count">{tl.yes.length > 0 ? '+' : ''}{tl.maybe.length}?</span>}
                        </span>
                      )}
                      {n > 0 && <CellNames yes={tl.yes} maybe={tl.maybe} />}
                    </div>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
