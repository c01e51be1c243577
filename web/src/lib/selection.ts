import type { Availability } from '../api/types';

/** What the painter puts down: a yes, a maybe ("if the beer is good") or an eraser. */
export type Brush = Availability | 'erase';
export type DragAction = Availability | 'clear';

export interface Cell {
  row: number;
  col: number;
}

export interface Drag {
  anchor: Cell;
  current: Cell;
  action: DragAction;
}

export type AvailabilityMap = Record<string, Availability>;
export type Cells = (string | null)[][];

/**
 * Pressing a cell decides what the whole drag does (like when2meet): painting over a cell that
 * already has the brush's value erases instead, so a click toggles and a drag is consistent.
 */
export function startDrag(avail: AvailabilityMap, cells: Cells, at: Cell, brush: Brush): Drag {
  const id = cells[at.row]?.[at.col] ?? null;
  let action: DragAction;
  if (brush === 'erase') action = 'clear';
  else action = id !== null && avail[id] === brush ? 'clear' : brush;
  return { anchor: at, current: at, action };
}

export function moveDrag(drag: Drag, to: Cell): Drag {
  if (drag.current.row === to.row && drag.current.col === to.col) return drag;
  return { ...drag, current: to };
}

/** Slot ids inside the rectangle between the anchor and the current cell. */
export function dragSlotIds(drag: Drag, cells: Cells): string[] {
  const r0 = Math.min(drag.anchor.row, drag.current.row);
  const r1 = Math.max(drag.anchor.row, drag.current.row);
  const c0 = Math.min(drag.anchor.col, drag.current.col);
  const c1 = Math.max(drag.anchor.col, drag.current.col);
  const ids: string[] = [];
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      const id = cells[r]?.[c];
      if (id) ids.push(id);
    }
  }
  return ids;
}

/** The availability after the drag (a new object; the input is not changed). */
export function applyDrag(avail: AvailabilityMap, drag: Drag, cells: Cells): AvailabilityMap {
  const next: AvailabilityMap = { ...avail };
  for (const id of dragSlotIds(drag, cells)) {
    if (drag.action === 'clear') delete next[id];
    else next[id] = drag.action;
  }
  return next;
}

/** Keyboard: move the focused cell, staying inside the grid. */
export function stepCell(at: Cell, key: string, rows: number, cols: number): Cell | null {
  const clamp = (v: number, max: number) => Math.max(0, Math.min(max - 1, v));
  switch (key) {
    case 'ArrowUp':
      return { row: clamp(at.row - 1, rows), col: at.col };
    case 'ArrowDown':
      return { row: clamp(at.row + 1, rows), col: at.col };
    case 'ArrowLeft':
      return { row: at.row, col: clamp(at.col - 1, cols) };
    case 'ArrowRight':
      return { row: at.row, col: clamp(at.col + 1, cols) };
    case 'Home':
      return { row: at.row, col: 0 };
    case 'End':
      return { row: at.row, col: cols - 1 };
    default:
      return null;
  }
}

export function sameAvailability(a: AvailabilityMap, b: AvailabilityMap): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}
