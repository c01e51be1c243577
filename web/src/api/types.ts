// Types of the Meetup API v1, derived from the server's OpenAPI document (schema.gen.ts, generated
// by scripts/gen-api.mjs; docs/api.md is the readable contract). Only the live WebSocket messages,
// which OpenAPI does not describe, are written here by hand.
import type { components } from './schema.gen';

type S = components['schemas'];

/**
 * Response bodies: the server leaves an absent optional field out (serde `skip_serializing_if`)
 * rather than sending `null`, so `null` is dropped from the generated field types.
 */
type Served<T> = T extends (infer U)[]
  ? Served<U>[]
  : T extends object
    ? { [K in keyof T]: Served<Exclude<T[K], null>> }
    : T;

export type Availability = S['Availability'];
export type Status = S['Status'];
/** The schema says "integer"; the server accepts exactly these. */
export type SlotMinutes = 15 | 30 | 60;

export type Slot = Served<S['SlotView']>;
export type Place = Served<S['PlaceView']>;
export type Participant = Served<S['ParticipantView']>;
export type Comment = Served<S['CommentView']>;
export type Decision = Served<S['Decision']>;
export type MeetupView = Omit<Served<S['MeetupView']>, 'slotMinutes'> & { slotMinutes: SlotMinutes };
export type PlaceSuggestion = Served<S['PlaceSuggestion']>;

/** Request bodies: sent as the app builds them (no nulls except where null means "remove"). */
export type PlaceInput = Served<S['PlaceInput']>;
export type CreateMeetup = Omit<Served<S['CreateMeetup']>, 'slotMinutes'> & { slotMinutes?: SlotMinutes };
export type CreateMeetupResponse = Omit<Served<S['CreatedMeetup']>, 'meetup'> & { meetup: MeetupView };
export type JoinResponse = Served<S['JoinedParticipant']>;
export type ParticipantPatch = Served<S['ParticipantPatch']>;
/** `deadline: null` removes the deadline. */
export type MeetupPatch = Omit<Served<S['MeetupPatch']>, 'deadline'> & { deadline?: string | null };
export type FinalizeInput = Served<S['FinalizeInput']>;
export type SecretInput = Served<S['SecretInput']>;
export type ReclaimInput = Served<S['ReclaimInput']>;

/**
 * The meetup's own fields one write changed (live `meetupUpdated`/`meetupFinalized`): absent means
 * unchanged and, unlike in views, `null` means removed — so this type keeps the nulls.
 */
export type MeetupChanges = S['MeetupChanges'];

export type LiveEvent =
  | { kind: 'participantJoined'; participant: Participant }
  | { kind: 'participantUpdated'; participant: Participant }
  | { kind: 'participantLeft'; participantId: string }
  | { kind: 'placeAdded'; place: Place }
  | { kind: 'placeUpdated'; place: Place }
  | { kind: 'placeRemoved'; placeId: string }
  | { kind: 'commentAdded'; comment: Comment }
  | { kind: 'commentRemoved'; commentId: string }
  | { kind: 'meetupUpdated'; changes: MeetupChanges }
  | { kind: 'meetupFinalized'; changes: MeetupChanges }
  | { kind: 'meetupDeleted' };

export type LiveMessage =
  | { type: 'snapshot'; revision: number; meetup: MeetupView; presence: number }
  | { type: 'event'; revision: number; event: LiveEvent }
  | { type: 'presence'; count: number };
