/** What this browser remembers: tokens per meetup, the person's name, recent meetups. */
export interface MeetupTokens {
  adminToken?: string;
  participantId?: string;
  participantToken?: string;
  /** This browser set (or used) a PIN for the name: offer "change" rather than "set". */
  hasPin?: boolean;
}

const PREFIX = 'beer-meetup:';

function read<T>(key: string): T | undefined {
  try {
    const raw = window.localStorage.getItem(PREFIX + key);
    return raw ? (JSON.parse(raw) as T) : undefined;
  } catch {
    return undefined;
  }
}

function write(key: string, value: unknown) {
  try {
    if (value === undefined) window.localStorage.removeItem(PREFIX + key);
    else window.localStorage.setItem(PREFIX + key, JSON.stringify(value));
  } catch {
    // private mode or full storage: the app still works for this visit
  }
}

export function getTokens(meetupId: string): MeetupTokens {
  return read<MeetupTokens>(`m:${meetupId}`) ?? {};
}

export function setTokens(meetupId: string, patch: MeetupTokens): MeetupTokens {
  const next = { ...getTokens(meetupId), ...patch };
  for (const k of Object.keys(next) as (keyof MeetupTokens)[]) {
    if (next[k] === undefined) delete next[k];
  }
  write(`m:${meetupId}`, next);
  return next;
}

export function forgetParticipant(meetupId: string): MeetupTokens {
  const t = getTokens(meetupId);
  delete t.participantId;
  delete t.participantToken;
  delete t.hasPin;
  write(`m:${meetupId}`, t);
  return t;
}

export function getName(): string {
  return read<string>('name') ?? '';
}

export function setName(name: string) {
  write('name', name);
}

export interface RecentMeetup {
  id: string;
  title: string;
  organizer: boolean;
  at: number;
}

export function getRecent(): RecentMeetup[] {
  return read<RecentMeetup[]>('recent') ?? [];
}

export function rememberRecent(m: Omit<RecentMeetup, 'at'>) {
  const list = getRecent().filter((r) => r.id !== m.id);
  list.unshift({ ...m, at: Date.now() });
  write('recent', list.slice(0, 8));
}

/** Edits not yet confirmed by the server (kept across a reload while offline). */
export interface PendingSave<T> {
  participantId: string;
  patch: T;
}

export function getPending<T>(meetupId: string): PendingSave<T> | undefined {
  return read<PendingSave<T>>(`pending:${meetupId}`);
}

export function setPending<T>(meetupId: string, value: PendingSave<T> | undefined) {
  write(`pending:${meetupId}`, value);
}
