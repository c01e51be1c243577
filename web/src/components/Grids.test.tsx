import { fireEvent, render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import '../i18n';
import { HeatGrid, PaintGrid } from './Grids';
import { buildGrid } from '../lib/timegrid';
import { slotTallies } from '../lib/tally';
import { meetup, person } from '../lib/fixtures';

const m = meetup();
const grid = buildGrid(m.slots, 'Europe/Berlin');
const cell = (r: number, c: number) => document.querySelector(`td[data-r="${r}"][data-c="${c}"]`) as HTMLElement;

describe('PaintGrid', () => {
  it('renders days across and times down with sticky headers', () => {
    render(<PaintGrid grid={grid} value={{}} brush="yes" locale="en" onChange={() => {}} />);
    expect(screen.getByRole('grid')).toBeInTheDocument();
    expect(document.querySelectorAll('thead th.day-head')).toHaveLength(2);
    expect(document.querySelectorAll('tbody th.time-head')).toHaveLength(3);
  });

  it('a press and release paints one cell', () => {
    const onChange = vi.fn();
    render(<PaintGrid grid={grid} value={{}} brush="maybe" locale="en" onChange={onChange} />);
    fireEvent.pointerDown(cell(1, 0));
    fireEvent.pointerUp(window);
    expect(onChange).toHaveBeenCalledWith({ s2: 'maybe' });
  });

  it('the keyboard moves with arrows and toggles with Space', () => {
    const onChange = vi.fn();
    render(<PaintGrid grid={grid} value={{ s1: 'yes' }} brush="yes" locale="en" onChange={onChange} />);
    const first = cell(0, 0);
    first.focus();
    fireEvent.keyDown(first, { key: ' ' });
    expect(onChange).toHaveBeenLastCalledWith({});
    fireEvent.keyDown(first, { key: 'ArrowDown' });
    expect(document.activeElement).toBe(cell(1, 0));
    fireEvent.keyDown(cell(1, 0), { key: 'Enter' });
    expect(onChange).toHaveBeenLastCalledWith({ s1: 'yes', s2: 'yes' });
  });

  it('does nothing when the meetup is closed', () => {
    const onChange = vi.fn();
    render(<PaintGrid grid={grid} value={{}} brush="yes" disabled locale="en" onChange={onChange} />);
    fireEvent.pointerDown(cell(0, 0));
    fireEvent.pointerUp(window);
    fireEvent.keyDown(cell(0, 0), { key: ' ' });
    expect(onChange).not.toHaveBeenCalled();
  });

  it('labels each cell for screen readers', () => {
    render(<PaintGrid grid={grid} value={{ s1: 'yes' }} brush="yes" locale="en" onChange={() => {}} />);
    expect(cell(0, 0).getAttribute('aria-label')).toMatch(/6 PM: Yes$/);
  });
});

describe('HeatGrid', () => {
  it('shows how many and who in each cell, and marks the best', () => {
    const mm = meetup({
      participants: [person('a', 'Anna', { s1: 'yes', s2: 'yes' }), person('b', 'Bob', { s1: 'maybe' })],
    });
    const tallies = slotTallies(mm);
    const onSelect = vi.fn();
    render(
      <HeatGrid grid={grid} tallies={tallies} total={2} best={new Set(['s1'])} fits={null} selected={null} locale="en" onSelect={onSelect} />,
    );
    const c = cell(0, 0);
    expect(c.dataset.count).toBe('2');
    expect(c).toHaveClass('best');
    // Initials on a phone (maybe dashed), the names one per line on a wide screen.
    expect(c.querySelector('.initials')?.textContent).toBe('AB');
    expect(c.querySelector('.initials .ini.maybe')?.textContent).toBe('B');
    expect([...c.querySelectorAll('.names .nm')].map((x) => x.textContent)).toEqual(['Anna', 'Bob?']);
    expect(c.getAttribute('aria-label')).toMatch(/1 \(Anna\) yes, 1 \(Bob\) maybe/);
    fireEvent.click(cell(1, 0));
    expect(onSelect).toHaveBeenCalledWith('s2');
  });

  it('a crowded cell shows two initials (or one and +n) and three names (or two and +n)', () => {
    const mm = meetup({
      participants: ['Anna', 'Bob', 'Carl', 'Dana'].map((n, i) => person(`p${i}`, n, { s1: 'yes' })),
    });
    render(
      <HeatGrid grid={grid} tallies={slotTallies(mm)} total={4} best={new Set()} fits={null} selected={null} locale="en" onSelect={() => {}} />,
    );
    const c = cell(0, 0);
    expect([...c.querySelectorAll('.initials .ini')].map((x) => x.textContent)).toEqual(['A', '+3']);
    expect([...c.querySelectorAll('.names .nm')].map((x) => x.textContent)).toEqual(['Anna', 'Bob', '+2']);
  });

  it('dims cells the filter leaves out', () => {
    const tallies = slotTallies(m);
    render(<HeatGrid grid={grid} tallies={tallies} total={0} best={new Set()} fits={new Set(['s1'])} selected={null} locale="en" onSelect={() => {}} />);
    expect(cell(0, 0)).not.toHaveClass('dim');
    expect(cell(1, 0)).toHaveClass('dim');
  });
});
