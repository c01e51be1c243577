import { describe, expect, it } from 'vitest';
import { adminUrl, parseHash, personalUrl, shareUrl } from './links';

describe('links', () => {
  it('a personal link carries the token in the fragment only', () => {
    const url = new URL(personalUrl('m1', 'tok_123'));
    expect(url.pathname).toBe('/m/m1');
    expect(url.search).toBe('');
    expect(parseHash(url.hash)).toEqual({ participantToken: 'tok_123', personal: true });
  });

  it('the organizer link keeps its format', () => {
    const url = new URL(adminUrl('m1', { adminToken: 'a', participantId: 'p', participantToken: 't' }));
    expect(parseHash(url.hash)).toEqual({ adminToken: 'a', participantId: 'p', participantToken: 't' });
    expect(shareUrl('m1')).toBe(`${window.location.origin}/m/m1`);
  });

  it('an empty or foreign fragment means nothing', () => {
    expect(parseHash('')).toEqual({});
    expect(parseHash('#section-2')).toEqual({});
  });
});
