import { createContext, useContext } from 'react';
import type { MeetupView, Participant, ParticipantPatch } from '../api/types';
import type { MeetupTokens } from '../lib/storage';
import type { SlotTally } from '../lib/tally';
import type { TimeGrid } from '../lib/timegrid';

export interface MeetupCtx {
  m: MeetupView;
  me?: Participant;
  isAdmin: boolean;
  /** The token for acting as `me` (participant token, or the admin token). */
  token?: string;
  tokens: MeetupTokens;
  setTokens: (t: MeetupTokens) => void;
  zone: string;
  locale: string;
  grid: TimeGrid;
  tallies: Map<string, SlotTally>;
  voters: Map<string, string[]>;
  open: boolean;
  /** Optimistically change the cached meetup. */
  update: (fn: (m: MeetupView) => MeetupView) => void;
  /** Patch my participant (optimistic, then the server's answer). */
  patchMe: (patch: ParticipantPatch) => Promise<boolean>;
  refetch: () => void;
  notify: (text: string) => void;
  /** The organizer's finalize form listens to this (a slot picked on the grid). */
  pickForFinal: (slotId: string) => void;
  finalPick: string | null;
}

export const Ctx = createContext<MeetupCtx | null>(null);

export function useMeetupCtx(): MeetupCtx {
  const c = useContext(Ctx);
  if (!c) throw new Error('useMeetupCtx outside a meetup');
  return c;
}
