import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
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
      <MemoryRouter initialEntries={[`/m/m1${window.location.hash}`]}>
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
  window.history.replaceState(null, '', '/');
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

  it('a personal link signs the friend back in and leaves the address bar', async () => {
    const json = (v: unknown, status = 200) => new Response(JSON.stringify(v), { status, headers: { 'Content-Type': 'application/json' } });
    const calls: { url: string; auth?: string }[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init?: RequestInit) => {
        const auth = (init?.headers as Record<string, string> | undefined)?.Authorization;
        calls.push({ url, auth });
        return url.endsWith('/participants/me') ? json(view.participants[1]) : json(view);
      }),
    );
    window.history.replaceState(null, '', '/m/m1#p=tok_bob');
    renderPage();
    expect(await screen.findByText(/You are Bob/)).toBeInTheDocument();
    expect(calls.some((c) => c.url.endsWith('/participants/me') && c.auth === 'Bearer tok_bob')).toBe(true);
    // The token went to the server only as a header, never in a URL.
    expect(calls.every((c) => !c.url.includes('tok_bob'))).toBe(true);
    expect(window.location.hash).toBe('');
    expect(JSON.parse(localStorage.getItem('beer-meetup:m:m1')!)).toEqual({ participantId: 'b', participantToken: 'tok_bob' });
    expect(screen.queryByRole('heading', { name: /Join in/ })).not.toBeInTheDocument();
  });

  it('"Not you?" explains itself and keeps the personal link at hand', async () => {
    localStorage.setItem('beer-meetup:m:m1', JSON.stringify({ participantId: 'b', participantToken: 'tok_bob' }));
    renderPage();
    fireEvent.click(await screen.findByRole('button', { name: 'Not you?' }));
    const panel = screen.getByRole('region', { name: 'Not you?' });
    expect(panel).toHaveTextContent('forget that you are Bob');
    expect((within(panel).getByRole('textbox') as HTMLInputElement).value).toMatch(/\/m\/m1#p=tok_bob$/);
    fireEvent.click(within(panel).getByRole('button', { name: 'Forget me on this device' }));
    expect(await screen.findByRole('heading', { name: /Join in/ })).toBeInTheDocument();
  });

  it('a late friend after the decision is told clearly, not asked to join', async () => {
    const decided = { ...view, status: 'finalized' as const, decision: { startSlotId: 's2', endSlotId: 's2', start: view.slots[1].start, end: view.slots[1].end, decidedAt: view.createdAt } };
    vi.stubGlobal('fetch', vi.fn(async () => new Response(JSON.stringify(decided), { status: 200, headers: { 'Content-Type': 'application/json' } })));
    renderPage();
    expect(await screen.findByTestId('late')).toHaveTextContent('It’s decided — you can still come!');
    expect(screen.queryByRole('heading', { name: /Join in/ })).not.toBeInTheDocument();
    expect(screen.getByText('The chat is for those who joined; joining is closed.')).toBeInTheDocument();
    // The organizer is coming even without painting that slot.
    const coming = document.querySelector('.final .who-names')!;
    expect(coming).toHaveTextContent('Anna');
  });

  it('an edit made while the server is unreachable is shown as not saved, then saved', async () => {
    localStorage.setItem('beer-meetup:m:m1', JSON.stringify({ participantId: 'b', participantToken: 'tok_bob' }));
    let up = true;
    const patches: string[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (_url: string, init?: RequestInit) => {
        if (!up) throw new TypeError('Failed to fetch');
        if (init?.method === 'PATCH') {
          patches.push(String(init.body));
          return new Response(JSON.stringify({ ...view.participants[1], ...JSON.parse(String(init.body)) }), { status: 200, headers: { 'Content-Type': 'application/json' } });
        }
        return new Response(JSON.stringify(view), { status: 200, headers: { 'Content-Type': 'application/json' } });
      }),
    );
    renderPage();
    await screen.findByText(/You are Bob/);
    up = false;
    fireEvent.click(document.querySelector('li[data-place="The Tipsy Cow"] .vote-btn')!);
    expect(await screen.findByTestId('unsaved')).toBeInTheDocument();
    // Shown as picked, but not as saved.
    expect(document.querySelector('li[data-place="The Tipsy Cow"] .vote-btn')).toHaveAttribute('aria-pressed', 'true');
    expect(JSON.parse(localStorage.getItem('beer-meetup:pending:m1')!).patch).toEqual({ placeVotes: ['p2', 'p1'] });
    up = true;
    act(() => {
      window.dispatchEvent(new Event('online'));
    });
    expect(await screen.findByTestId('recovered')).toHaveTextContent('your changes are saved');
    expect(patches.at(-1)).toBe(JSON.stringify({ placeVotes: ['p2', 'p1'] }));
    expect(localStorage.getItem('beer-meetup:pending:m1')).toBeNull();
  });
  it('a taken name offers the PIN; a wrong PIN is told, the right one signs the friend back in', async () => {
    const json = (v: unknown, status = 200) =>
      new Response(JSON.stringify(v), { status, headers: { 'Content-Type': status < 400 ? 'application/json' : 'application/problem+json' } });
    const reclaims: string[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init?: RequestInit) => {
        if (url.endsWith('/participants') && init?.method === 'POST') {
          return json({ title: 'Conflict', status: 409, detail: 'The name "Bob" is already taken', errors: [{ field: 'name', message: 'is already taken' }] }, 409);
        }
        if (url.endsWith('/participants/reclaim')) {
          reclaims.push(String(init?.body));
          const { secret } = JSON.parse(String(init?.body)) as { secret: string };
          return secret === '4711'
            ? json({ participant: view.participants[1], token: 'tok_bob' })
            : json({ title: 'Unauthorized', status: 401, detail: 'That name and PIN do not match anyone' }, 401);
        }
        return json(view);
      }),
    );
    renderPage();
    fireEvent.change(await screen.findByLabelText('Your name'), { target: { value: 'bob' } });
    fireEvent.click(screen.getByRole('button', { name: /Join$/ }));
    fireEvent.click(await screen.findByRole('button', { name: /That’s you\? Enter your PIN/ }));
    const pin = await screen.findByLabelText('Your PIN');
    await waitFor(() => expect(pin).toHaveFocus());
    fireEvent.change(pin, { target: { value: '12' } });
    fireEvent.click(screen.getByRole('button', { name: 'Get back in' }));
    expect(await screen.findByTestId('reclaim-error')).toHaveTextContent('At least 4 characters');
    expect(reclaims).toEqual([]);
    fireEvent.change(pin, { target: { value: '0000' } });
    fireEvent.click(screen.getByRole('button', { name: 'Get back in' }));
    await waitFor(() => expect(screen.getByTestId('reclaim-error')).toHaveTextContent('that name and PIN don’t match'));
    fireEvent.change(screen.getByLabelText('Your PIN'), { target: { value: '4711' } });
    fireEvent.click(screen.getByRole('button', { name: 'Get back in' }));
    expect(await screen.findByText(/You are Bob/)).toBeInTheDocument();
    expect(JSON.parse(reclaims.at(-1)!)).toEqual({ name: 'bob', secret: '4711' });
    expect(JSON.parse(localStorage.getItem('beer-meetup:m:m1')!)).toMatchObject({ participantId: 'b', participantToken: 'tok_bob', hasPin: true });
    expect(screen.queryByRole('heading', { name: /Join in/ })).not.toBeInTheDocument();
  });
});
