import type {
  Comment,
  CreateMeetup,
  CreateMeetupResponse,
  FinalizeInput,
  JoinResponse,
  MeetupPatch,
  MeetupView,
  Participant,
  Place,
  PlaceInput,
  ParticipantPatch,
  ReclaimInput,
} from './types';
import { getRecent, getTokens } from '../lib/storage';

/** The recent meetups with a token of each, as the scope of place suggestions. */
function suggestionScope(): { id: string; token: string }[] {
  return getRecent().flatMap((m) => {
    const tokens = getTokens(m.id);
    const token = tokens.adminToken ?? tokens.participantToken;
    return token ? [{ id: m.id, token }] : [];
  });
}

/** An RFC 9457 problem answer, with per-field messages keyed by the API's `errors[].field`. */
export class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail?: string;
  readonly fields: Record<string, string>;
  readonly retryAfter?: number;

  constructor(
    status: number,
    title: string,
    detail?: string,
    fields: Record<string, string> = {},
    retryAfter?: number,
  ) {
    super(detail || title);
    this.name = 'ApiError';
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }
}

export const API_BASE = '/api/v1';

interface Problem {
  title?: string;
  detail?: string;
  errors?: { field?: string; message?: string }[];
}

export async function parseProblem(res: Response): Promise<ApiError> {
  let body: Problem = {};
  try {
    body = (await res.json()) as Problem;
  } catch {
    // not JSON: keep the status line
  }
  const fields: Record<string, string> = {};
  for (const e of body.errors ?? []) {
    if (e.field && e.message && !(e.field in fields)) fields[e.field] = e.message;
  }
  const ra = Number(res.headers.get('Retry-After'));
  return new ApiError(
    res.status,
    body.title || res.statusText || 'Error',
    body.detail,
    fields,
    Number.isFinite(ra) && ra > 0 ? ra : undefined,
  );
}

async function request<T>(
  method: string,
  path: string,
  opts: { body?: unknown; token?: string } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  let res: Response;
  try {
    res = await fetch(API_BASE + path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch {
    throw new ApiError(0, 'Network error');
  }
  if (!res.ok) throw await parseProblem(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

const m = (id: string) => `/meetups/${encodeURIComponent(id)}`;

export const api = {
  createMeetup: (body: CreateMeetup) =>
    request<CreateMeetupResponse>('POST', '/meetups', { body }),
  getMeetup: (id: string) => request<MeetupView>('GET', m(id)),
  patchMeetup: (id: string, body: MeetupPatch, token: string) =>
    request<MeetupView>('PATCH', m(id), { body, token }),
  deleteMeetup: (id: string, token: string) => request<void>('DELETE', m(id), { token }),
  addPlace: (id: string, body: PlaceInput, token: string) =>
    request<Place>('POST', `${m(id)}/places`, { body, token }),
  removePlace: (id: string, placeId: string, token: string) =>
    request<void>('DELETE', `${m(id)}/places/${encodeURIComponent(placeId)}`, { token }),
  join: (id: string, body: { name: string; timeZone?: string }) =>
    request<JoinResponse>('POST', `${m(id)}/participants`, { body }),
  /**
   * Sets or changes the PIN that gets this name back on another device (own link only). The
   * organizer adds their admin token so the PIN brings the organizer controls back too.
   */
  setSecret: (id: string, pid: string, secret: string, token: string, adminToken?: string) =>
    request<void>('PUT', `${m(id)}/participants/${encodeURIComponent(pid)}/secret`, {
      body: adminToken ? { secret, adminToken } : { secret },
      token,
    }),
  removeSecret: (id: string, pid: string, token: string) =>
    request<void>('DELETE', `${m(id)}/participants/${encodeURIComponent(pid)}/secret`, { token }),
  /** The name's own token back, for its PIN: answers what joining answered. */
  reclaim: (id: string, body: ReclaimInput) =>
    request<JoinResponse>('POST', `${m(id)}/participants/reclaim`, { body }),
  me: (id: string, token: string) =>
    request<Participant>('GET', `${m(id)}/participants/me`, { token }),
  patchParticipant: (id: string, pid: string, body: ParticipantPatch, token: string) =>
    request<Participant>('PATCH', `${m(id)}/participants/${encodeURIComponent(pid)}`, {
      body,
      token,
    }),
  removeParticipant: (id: string, pid: string, token: string) =>
    request<void>('DELETE', `${m(id)}/participants/${encodeURIComponent(pid)}`, { token }),
  addComment: (id: string, text: string, token: string) =>
    request<Comment>('POST', `${m(id)}/comments`, { body: { text }, token }),
  removeComment: (id: string, cid: string, token: string) =>
    request<void>('DELETE', `${m(id)}/comments/${encodeURIComponent(cid)}`, { token }),
  finalize: (id: string, body: FinalizeInput, token: string) =>
    request<MeetupView>('POST', `${m(id)}/finalize`, { body, token }),
  /** Places of the meetups this browser holds a token for (the server suggests no others). */
  placeSuggestions: (q: string) =>
    request<{ name: string; address?: string; link?: string }[]>('POST', '/places/suggestions', {
      body: { q, meetups: suggestionScope() },
    }),
  icsUrl: (id: string) => `${API_BASE}${m(id)}/event.ics`,
  liveUrl: (id: string, since?: number) => {
    const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    const q = since === undefined ? '' : `?since=${since}`;
    return `${proto}//${window.location.host}${API_BASE}${m(id)}/live${q}`;
  },
};
