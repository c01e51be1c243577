import { describe, expect, it } from 'vitest';
import { applyDrag, dragSlotIds, moveDrag, sameAvailability, startDrag, stepCell, type Cells } from './selection';

// 3 times × 3 days; the middle day has no 20:00 slot.
const cells: Cells = [
  ['a0', 'b0', 'c0'],
  ['a1', 'b1', 'c1'],
  ['a2', null, 'c2'],
];

describe('grid selection (drag painting)', () => {
  it('a click on an empty cell paints it with the brush', () => {
    const d = startDrag({}, cells, { row: 0, col: 0 }, 'yes');
    expect(d.action).toBe('yes');
    expect(applyDrag({}, d, cells)).toEqual({ a0: 'yes' });
  });

  it('a click on a cell that already has the brush value clears it (toggle)', () => {
    const d = startDrag({ a0: 'yes' }, cells, { row: 0, col: 0 }, 'yes');
    expect(d.action).toBe('clear');
    expect(applyDrag({ a0: 'yes', b0: 'maybe' }, d, cells)).toEqual({ b0: 'maybe' });
  });

  it('painting maybe over yes turns it into maybe', () => {
    const d = startDrag({ a0: 'yes' }, cells, { row: 0, col: 0 }, 'maybe');
    expect(applyDrag({ a0: 'yes' }, d, cells)).toEqual({ a0: 'maybe' });
  });

  it('dragging covers the rectangle between anchor and pointer, skipping missing cells', () => {
    let d = startDrag({}, cells, { row: 0, col: 0 }, 'yes');
    d = moveDrag(d, { row: 2, col: 1 });
    expect(dragSlotIds(d, cells).sort()).toEqual(['a0', 'a1', 'a2', 'b0', 'b1']);
    expect(applyDrag({ c0: 'maybe' }, d, cells)).toEqual({
      a0: 'yes', a1: 'yes', a2: 'yes', b0: 'yes', b1: 'yes', c0: 'maybe',
    });
  });

  it('dragging backwards (up and left) works the same', () => {
    let d = startDrag({}, cells, { row: 2, col: 2 }, 'maybe');
    d = moveDrag(d, { row: 1, col: 1 });
    expect(dragSlotIds(d, cells).sort()).toEqual(['b1', 'c1', 'c2']);
  });

  it('the whole drag keeps the action decided on press (erasing a painted block)', () => {
    const avail = { a0: 'yes', a1: 'yes', b0: 'maybe' } as const;
    let d = startDrag(avail, cells, { row: 0, col: 0 }, 'yes');
    d = moveDrag(d, { row: 1, col: 1 });
    expect(applyDrag(avail, d, cells)).toEqual({});
  });

  it('the eraser always clears', () => {
    const d = startDrag({}, cells, { row: 0, col: 0 }, 'erase');
    expect(d.action).toBe('clear');
    expect(applyDrag({ a0: 'maybe' }, moveDrag(d, { row: 0, col: 2 }), cells)).toEqual({});
  });

  it('does not change its input and keeps the same drag when the pointer stays on a cell', () => {
    const avail = { a0: 'yes' } as const;
    const d = startDrag(avail, cells, { row: 1, col: 1 }, 'yes');
    expect(moveDrag(d, { row: 1, col: 1 })).toBe(d);
    applyDrag(avail, d, cells);
    expect(avail).toEqual({ a0: 'yes' });
  });

  it('keyboard steps stay inside the grid', () => {
    expect(stepCell({ row: 0, col: 0 }, 'ArrowUp', 3, 3)).toEqual({ row: 0, col: 0 });
    expect(stepCell({ row: 0, col: 0 }, 'ArrowRight', 3, 3)).toEqual({ row: 0, col: 1 });
    expect(stepCell({ row: 2, col: 2 }, 'ArrowDown', 3, 3)).toEqual({ row: 2, col: 2 });
    expect(stepCell({ row: 1, col: 1 }, 'End', 3, 3)).toEqual({ row: 1, col: 2 });
    expect(stepCell({ row: 1, col: 1 }, 'x', 3, 3)).toBeNull();
  });

  it('compares availability maps', () => {
    expect(sameAvailability({ a: 'yes' }, { a: 'yes' })).toBe(true);
    expect(sameAvailability({ a: 'yes' }, { a: 'maybe' })).toBe(false);
    expect(sameAvailability({ a: 'yes' }, {})).toBe(false);
  });
});
