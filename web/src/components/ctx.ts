import { createContext, useContext } from 'react';
import type { MeetupView, Participant, ParticipantPatch } from '../api/types';
import type { MeetupTokens } from '../lib/storage';
import type { SaveState } from '../lib/saveQueue';
import type { SlotTally } from '../lib/tally';
import type { TimeGrid } from '../lib/timegrid';

/** The meetup as shown (server state with my unsaved edits laid over) and what is derived from it. */
export interface MeetupData {
  m: MeetupView;
  zone: string;
  locale: string;
  grid: TimeGrid;
  tallies: Map<string, SlotTally>;
  voters: Map<string, string[]>;
  open: boolean;
}

/** Who I am here. */
export interface Session {
  me?: Participant;
  isAdmin: boolean;
  /** The token for acting as `me` (participant token, or the admin token). */
  token?: string;
  tokens: MeetupTokens;
  setTokens: (t: MeetupTokens) => void;
  /** Set right after joining: the "save your personal link" moment. */
  justJoined: boolean;
  setJustJoined: (v: boolean) => void;
}

/** Saving my own answers (queued while offline). */
export interface MySaves {
  state: SaveState;
  save: (patch: ParticipantPatch) => void;
}

/** Page-wide bits: the toast and the organizer's "use this slot" pick. */
export interface PageUi {
  notify: (text: string) => void;
  pickForFinal: (slotId: string) => void;
  finalPick: string | null;
}

export const MeetupDataCtx = createContext<MeetupData | null>(null);
export const SessionCtx = createContext<Session | null>(null);
export const SavesCtx = createContext<MySaves | null>(null);
export const UiCtx = createContext<PageUi | null>(null);

function need<T>(v: T | null, what: string): T {
  if (!v) throw new Error(`${what} used outside a meetup page`);
  return v;
}

export const useMeetupData = () => need(useContext(MeetupDataCtx), 'useMeetupData');
export const useSession = () => need(useContext(SessionCtx), 'useSession');
export const useMySaves = () => need(useContext(SavesCtx), 'useMySaves');
export const usePageUi = () => need(useContext(UiCtx), 'usePageUi');
