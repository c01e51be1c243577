import { describe, expect, it } from 'vitest';
import i18n from '../i18n';
import { ApiError, parseProblem } from '../api/client';
import { errorText, fieldErrors, normField } from './errors';
import { forgetParticipant, getName, getRecent, getTokens, rememberRecent, setName, setTokens } from './storage';

describe('problem JSON', () => {
  it('reads RFC 9457 problems with field errors and Retry-After', async () => {
    const res = new Response(
      JSON.stringify({
        type: 'https://beermeetup.io/problems/validation-failed',
        title: 'Unprocessable Entity',
        status: 422,
        detail: '2 fields are not valid.',
        errors: [
          { field: 'title', message: 'must not be empty' },
          { field: 'places[1].name', message: 'must not be empty' },
          { field: 'title', message: 'second message is ignored' },
        ],
      }),
      { status: 422, headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '7' } },
    );
    const err = await parseProblem(res);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(422);
    expect(err.detail).toBe('2 fields are not valid.');
    expect(err.retryAfter).toBe(7);
    expect(fieldErrors(err)).toEqual({ title: 'must not be empty', 'places.1.name': 'must not be empty' });
  });

  it('survives a body that is not JSON', async () => {
    const err = await parseProblem(new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    expect(err.status).toBe(502);
    expect(err.fields).toEqual({});
  });

  it('normalizes field paths', () => {
    expect(normField('places[0].name')).toBe('places.0.name');
    expect(normField('/places/0/name')).toBe('places.0.name');
    expect(normField('window.start')).toBe('window.start');
  });

  it('turns errors into sentences in the current language', async () => {
    await i18n.changeLanguage('en');
    const t = i18n.t.bind(i18n);
    expect(errorText(new ApiError(0, 'Network error'), t)).toMatch(/not answering/);
    expect(errorText(new ApiError(429, 'Too Many Requests'), t)).toMatch(/Too many requests/);
    expect(errorText(new ApiError(404, 'Not Found'), t)).toMatch(/does not exist/);
    expect(errorText(new ApiError(409, 'Conflict', 'The meetup is closed.'), t)).toBe('The meetup is closed.');
    await i18n.changeLanguage('ru');
    expect(errorText(new ApiError(0, 'Network error'), i18n.t.bind(i18n))).toMatch(/Сервер не отвечает/);
    await i18n.changeLanguage('en');
  });
});

describe('what the browser remembers', () => {
  it('keeps tokens per meetup and forgets the participant only', () => {
    setTokens('m1', { adminToken: 'a', participantId: 'p', participantToken: 't' });
    setTokens('m2', { participantId: 'q', participantToken: 'u' });
    expect(getTokens('m1')).toEqual({ adminToken: 'a', participantId: 'p', participantToken: 't' });
    expect(forgetParticipant('m1')).toEqual({ adminToken: 'a' });
    expect(getTokens('m2').participantId).toBe('q');
    expect(getTokens('nope')).toEqual({});
  });

  it('remembers the name and recent meetups (newest first, no duplicates)', () => {
    setName('Anna');
    expect(getName()).toBe('Anna');
    rememberRecent({ id: 'a', title: 'A', organizer: true });
    rememberRecent({ id: 'b', title: 'B', organizer: false });
    rememberRecent({ id: 'a', title: 'A again', organizer: true });
    expect(getRecent().map((r) => r.title)).toEqual(['A again', 'B']);
  });

  it('copes with broken storage content', () => {
    localStorage.setItem('beer-meetup:m:bad', '{not json');
    expect(getTokens('bad')).toEqual({});
  });
});
