import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter, Route, Routes } from 'react-router';
import { afterEach, describe, expect, it, vi } from 'vitest';
import '../i18n';
import CreatePage from './CreatePage';

function renderPage() {
  return render(
    <QueryClientProvider client={new QueryClient()}>
      <MemoryRouter initialEntries={['/']}>
        <Routes>
          <Route path="/" element={<CreatePage />} />
          <Route path="/m/:id" element={<p>meetup page</p>} />
        </Routes>
      </MemoryRouter>
    </QueryClientProvider>,
  );
}

afterEach(() => {
  vi.unstubAllGlobals();
  localStorage.clear();
});

describe('CreatePage', () => {
  it('checks required fields before sending anything', async () => {
    const fetchMock = vi.fn();
    vi.stubGlobal('fetch', fetchMock);
    renderPage();
    fireEvent.click(screen.getByRole('button', { name: /Create the meetup/ }));
    expect(await screen.findAllByText('Please fill this in.')).toHaveLength(2);
    expect(fetchMock).not.toHaveBeenCalled();
  });

  it('an empty submit moves the focus to the first field to fix', async () => {
    vi.stubGlobal('fetch', vi.fn());
    renderPage();
    fireEvent.click(screen.getByRole('button', { name: /Create the meetup/ }));
    await waitFor(() => expect(document.activeElement).toBe(document.getElementById('title')));
  });

  it('“Add a place” puts the cursor in the new row', async () => {
    renderPage();
    fireEvent.click(screen.getByRole('button', { name: /Add a place/ }));
    await waitFor(() => expect(document.activeElement).toBe(document.querySelector('input[name="place-1-name"]')));
  });

  it('shows the API’s problem JSON errors next to their fields', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn(async () =>
        new Response(
          JSON.stringify({
            type: 'about:blank',
            title: 'Unprocessable Entity',
            status: 422,
            detail: 'Please fix the highlighted fields.',
            errors: [
              { field: 'title', message: 'That title is already brewing.' },
              { field: 'places[0].name', message: 'That place is closed forever.' },
              { field: 'deadline', message: 'Deadline must be in the future.' },
            ],
          }),
          { status: 422, headers: { 'Content-Type': 'application/problem+json' } },
        ),
      ),
    );
    renderPage();
    fireEvent.change(screen.getByLabelText('What are we celebrating?'), { target: { value: 'Pints' } });
    fireEvent.change(screen.getByLabelText('Your name'), { target: { value: 'Anna' } });
    fireEvent.change(screen.getByLabelText('Place 1'), { target: { value: 'Closed Bar' } });
    fireEvent.click(screen.getByRole('button', { name: /Create the meetup/ }));
    expect(await screen.findByText('That title is already brewing.')).toBeInTheDocument();
    expect(screen.getByText('That place is closed forever.')).toBeInTheDocument();
    expect(screen.getByText('Deadline must be in the future.')).toBeInTheDocument();
    expect(screen.getByLabelText('What are we celebrating?')).toHaveAttribute('aria-invalid', 'true');
    // Editing the field clears its message.
    fireEvent.change(screen.getByLabelText('What are we celebrating?'), { target: { value: 'Pints!' } });
    expect(screen.queryByText('That title is already brewing.')).not.toBeInTheDocument();
  });

  it('creates the meetup, remembers the tokens and opens it', async () => {
    const fetchMock = vi.fn(async (_url: string, init: RequestInit) => {
      const body = JSON.parse(String(init.body));
      expect(body.days).toHaveLength(7);
      expect(body.window).toEqual({ start: '18:00', end: '23:00' });
      expect(body.places).toEqual([{ name: 'Hop House', link: 'https://hop.example' }]);
      return new Response(
        JSON.stringify({
          meetup: { id: 'abc', title: body.title, slots: [], places: [], participants: [], comments: [] },
          adminToken: 'admin-t',
          participantId: 'p1',
          participantToken: 'part-t',
        }),
        { status: 201, headers: { 'Content-Type': 'application/json' } },
      );
    });
    vi.stubGlobal('fetch', fetchMock);
    renderPage();
    fireEvent.change(screen.getByLabelText('What are we celebrating?'), { target: { value: 'Pints' } });
    fireEvent.change(screen.getByLabelText('Your name'), { target: { value: 'Anna' } });
    fireEvent.change(screen.getByLabelText('Place 1'), { target: { value: 'Hop House' } });
    fireEvent.change(screen.getByLabelText('Address or link (optional)'), { target: { value: 'https://hop.example' } });
    fireEvent.click(screen.getByRole('button', { name: /Create the meetup/ }));
    // Generous wait: on a loaded 2-core machine the navigation can take more than the default second.
    await waitFor(() => expect(screen.getByText('meetup page')).toBeInTheDocument(), { timeout: 5000 });
    expect(JSON.parse(localStorage.getItem('beer-meetup:m:abc')!)).toEqual({
      adminToken: 'admin-t',
      participantId: 'p1',
      participantToken: 'part-t',
    });
    expect(JSON.parse(localStorage.getItem('beer-meetup:name')!)).toBe('Anna');
  });
});
