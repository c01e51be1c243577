import { act, render, screen, waitFor, within } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter, Route, Routes } from 'react-router';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import i18n from '../i18n';
import { meetup, person } from '../lib/fixtures';
import MeetupPage from './MeetupPage';

class FakeSocket {
  static last: FakeSocket | null = null;
  onopen: (() => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  constructor(public url: string) {
    FakeSocket.last = this;
  }
  close() {}
  push(msg: object) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

const view = meetup({
  participants: [
    { ...person('a', 'Anna', { s2: 'yes' }, ['p2']), isOrganizer: true },
    person('b', 'Bob', { s2: 'maybe', s3: 'yes' }, ['p2']),
  ],
});

function renderPage() {
  return render(
    <QueryClientProvider client={new QueryClient({ defaultOptions: { queries: { retry: false } } })}>
      <MemoryRouter initialEntries={['/m/m1']}>
        <Routes>
          <Route path="/m/:id" element={<MeetupPage />} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

beforeEach(() => {
  vi.stubGlobal('WebSocket', FakeSocket);
  vi.stubGlobal(
    'fetch',
    vi.fn(async () => new Response(JSON.stringify(view), { status: 200, headers: { 'Content-Type': 'application/json' } })),
  );
});
afterEach(() => {
  vi.unstubAllGlobals();
  localStorage.clear();
  void i18n.changeLanguage('en');
});

describe('MeetupPage', () => {
  it('shows the meetup, a join form, results with names and the place ranking', async () => {
    renderPage();
    expect(await screen.findByRole('heading', { name: 'Friday pints' })).toBeInTheDocument();
    expect(screen.getByRole('heading', { name: /Join in/ })).toBeInTheDocument();
    // The best slot (s2: Anna yes + Bob maybe) is listed with names, without hovering.
    const best = screen.getByRole('heading', { name: /Best times/ }).parentElement!;
    expect(within(best).getAllByText(/Anna, Bob/)[0]).toBeInTheDocument();
    const hop = document.querySelector('li[data-place="Hop House"]')!;
    expect(hop).toHaveClass('leading');
    expect(within(hop as HTMLElement).getByText('Bob')).toBeInTheDocument();
    // The heat map's "who" panel names everyone for the best slot.
    const who = screen.getByRole('complementary', { name: 'Who can come' });
    expect(within(who).getByText('Anna')).toBeInTheDocument();
    expect(within(who).getByText('Bob')).toBeInTheDocument();
  });

  it('updates live and shows presence, and a banner when the connection drops', async () => {
    renderPage();
    await screen.findByRole('heading', { name: 'Friday pints' });
    const ws = FakeSocket.last!;
    act(() => {
      ws.onopen?.();
      ws.push({ type: 'snapshot', revision: 1, meetup: view, presence: 4 });
    });
    await waitFor(() => expect(screen.getByTestId('presence')).toHaveTextContent('4 friends looking'));
    act(() => ws.push({ type: 'event', revision: 2, event: { kind: 'participantJoined', participant: person('c', 'Carl', { s1: 'yes' }) } }));
    await waitFor(() =>
      expect(screen.getByRole('heading', { name: /Who’s in/ }).parentElement).toHaveTextContent('Carl'),
    );
    act(() => ws.onclose?.());
    expect(await screen.findByTestId('reconnecting')).toBeInTheDocument();
  });

  it('speaks Russian when switched', async () => {
    renderPage();
    await screen.findByRole('heading', { name: 'Friday pints' });
    await act(async () => {
      await i18n.changeLanguage('ru');
    });
    await waitFor(() => expect(screen.getByRole('heading', { name: /Когда\?/ })).toBeInTheDocument());
    expect(document.documentElement.lang).toBe('ru');
  });
});
