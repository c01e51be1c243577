import { describe, expect, it } from 'vitest';
import { applyEvent } from './live';
import type { LiveMessage, MeetupView } from '../api/types';
import recording from './live.recorded.json';

/**
 * A recording from the real server (api-server/tests/live_deltas.rs): the view, one live event of
 * every kind in order, and the view after the last one. The server's test keeps the recording's
 * shapes current.
 */
const initial = recording.initial as unknown as MeetupView;
const frames = recording.frames as unknown as Extract<LiveMessage, { type: 'event' }>[];
const last = recording.final as unknown as MeetupView;

/** `updatedAt` moves with every write but only snapshots and meetup events carry it. */
const comparable = ({ updatedAt: _, ...rest }: MeetupView) => rest;

describe('replaying the server’s live events', () => {
  it('ends in exactly the server’s view', () => {
    let view: MeetupView | null = initial;
    for (const frame of frames) {
      expect(frame.revision).toBe(view!.revision + 1);
      view = applyEvent(view!, frame.event, frame.revision);
      expect(view).not.toBeNull();
    }
    expect(comparable(view!)).toEqual(comparable(last));
  });

  it('covers every kind of event except deletion', () => {
    const kinds = new Set(frames.map((f) => f.event.kind));
    expect([...kinds].sort()).toEqual([
      'commentAdded', 'commentRemoved', 'meetupFinalized', 'meetupUpdated', 'participantJoined',
      'participantLeft', 'participantUpdated', 'placeAdded', 'placeRemoved', 'placeUpdated',
    ]);
  });

  it('carries no list of the meetup in any event', () => {
    for (const frame of frames) {
      expect(JSON.stringify(frame.event)).not.toMatch(/"(participants|comments|slots|places|ranking)"/);
    }
  });
});
