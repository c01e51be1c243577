// Types of the Meetup API v1 (docs/api.md is the readable contract).
export type Availability = 'yes' | 'maybe';
export type Status = 'open' | 'closed' | 'finalized';
export type SlotMinutes = 15 | 30 | 60;

export interface Slot {
  id: string;
  start: string;
  end: string;
  yes: string[];
  maybe: string[];
  score: number;
}

export interface Place {
  id: string;
  name: string;
  address?: string;
  link?: string;
  note?: string;
  addedBy: string;
  voters: string[];
}

export interface Participant {
  id: string;
  name: string;
  timeZone?: string;
  availability: Record<string, Availability>;
  placeVotes: string[];
  note?: string;
  isOrganizer: boolean;
  joinedAt: string;
}

export interface Comment {
  id: string;
  participantId?: string;
  author: string;
  text: string;
  createdAt: string;
}

export interface Decision {
  startSlotId: string;
  endSlotId: string;
  start: string;
  end: string;
  placeId?: string;
  note?: string;
  decidedAt: string;
}

export interface MeetupView {
  id: string;
  title: string;
  description?: string;
  organizerName: string;
  timeZone: string;
  slotMinutes: SlotMinutes;
  status: Status;
  deadline?: string;
  allowParticipantPlaces: boolean;
  revision: number;
  createdAt: string;
  updatedAt: string;
  slots: Slot[];
  places: Place[];
  participants: Participant[];
  comments: Comment[];
  ranking: { slots: string[]; places: string[] };
  decision?: Decision;
}

export interface PlaceInput {
  name: string;
  address?: string;
  link?: string;
  note?: string;
}

export interface CreateMeetup {
  title: string;
  description?: string;
  organizerName: string;
  timeZone: string;
  slotMinutes?: SlotMinutes;
  days?: string[];
  window?: { start: string; end: string };
  deadline?: string;
  allowParticipantPlaces?: boolean;
  places?: PlaceInput[];
}

export interface CreateMeetupResponse {
  meetup: MeetupView;
  adminToken: string;
  participantId: string;
  participantToken: string;
}

export interface JoinResponse {
  participant: Participant;
  token: string;
}

export interface ParticipantPatch {
  name?: string;
  timeZone?: string;
  availability?: Record<string, Availability>;
  placeVotes?: string[];
  note?: string;
}

export interface MeetupPatch {
  title?: string;
  description?: string;
  deadline?: string | null;
  allowParticipantPlaces?: boolean;
  status?: 'open' | 'closed';
}

export interface FinalizeInput {
  startSlotId: string;
  endSlotId?: string;
  placeId?: string;
  note?: string;
}

export type LiveEvent =
  | { kind: 'participantJoined'; participant: Participant }
  | { kind: 'participantUpdated'; participant: Participant }
  | { kind: 'participantLeft'; participantId: string }
  | { kind: 'placeAdded'; place: Place }
  | { kind: 'placeUpdated'; place: Place }
  | { kind: 'placeRemoved'; placeId: string }
  | { kind: 'commentAdded'; comment: Comment }
  | { kind: 'commentRemoved'; commentId: string }
  | { kind: 'meetupUpdated'; meetup: MeetupView }
  | { kind: 'meetupFinalized'; meetup: MeetupView }
  | { kind: 'meetupDeleted' };

export type LiveMessage =
  | { type: 'snapshot'; revision: number; meetup: MeetupView; presence: number }
  | { type: 'event'; revision: number; event: LiveEvent }
  | { type: 'presence'; count: number };
