import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useLocation, useParams } from 'react-router';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { api, ApiError } from '../api/client';
import type { MeetupView, ParticipantPatch } from '../api/types';
import { useLive } from '../api/useLive';
import { AdminPanel } from '../components/AdminPanel';
import { BeerLoader } from '../components/BeerLoader';
import { FinalizedCard, InviteButton, JoinCard, MeBar, ShareCard } from '../components/Cards';
import { Comments } from '../components/Comments';
import { Ctx, type MeetupCtx } from '../components/ctx';
import { PeopleSection } from '../components/PeopleSection';
import { PlacesSection } from '../components/PlacesSection';
import { WhenSection } from '../components/WhenSection';
import { errorText } from '../lib/errors';
import { forgetParticipant, getTokens, rememberRecent, setTokens as storeTokens, type MeetupTokens } from '../lib/storage';
import { placeVoters, slotTallies } from '../lib/tally';
import { buildGrid, utcOffsetLabel, viewerZone } from '../lib/timegrid';

/** Reads `#admin=…&pid=…&pt=…` (the organizer link) into local storage and clears it from the URL. */
function useHashTokens(id: string): MeetupTokens {
  return useMemo(() => {
    const hash = window.location.hash.replace(/^#/, '');
    if (hash) {
      const q = new URLSearchParams(hash);
      const patch: MeetupTokens = {};
      if (q.get('admin')) patch.adminToken = q.get('admin')!;
      if (q.get('pid')) patch.participantId = q.get('pid')!;
      if (q.get('pt')) patch.participantToken = q.get('pt')!;
      if (Object.keys(patch).length) {
        storeTokens(id, patch);
        window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
      }
    }
    return getTokens(id);
  }, [id]);
}

export default function MeetupPage() {
  const { id = '' } = useParams();
  const { t, i18n } = useTranslation();
  const location = useLocation();
  const qc = useQueryClient();
  const initialTokens = useHashTokens(id);
  const [tokens, setTokensState] = useState<MeetupTokens>(initialTokens);
  const [fresh, setFresh] = useState(() => !!(location.state as { justCreated?: boolean } | null)?.justCreated);
  const [notice, setNotice] = useState('');
  const [finalPick, setFinalPick] = useState<string | null>(null);
  const key = useMemo(() => ['meetup', id], [id]);

  const [liveOpen, setLiveOpen] = useState(false);
  const query = useQuery({
    queryKey: key,
    queryFn: () => api.getMeetup(id),
    enabled: !!id,
    // Without the live connection (a proxy that blocks WebSockets, or while reconnecting), poll.
    refetchInterval: liveOpen ? false : 5000,
  });
  const live = useLive(id, !!id && !(query.error instanceof ApiError && query.error.status === 404));
  useEffect(() => setLiveOpen(live.state === 'open'), [live.state]);
  const m = query.data;

  // Show "back online" for a moment after a reconnect.
  const [wasDown, setWasDown] = useState(false);
  useEffect(() => {
    if (live.state === 'reconnecting') setWasDown(true);
    if (live.state === 'open' && wasDown) {
      const timer = window.setTimeout(() => setWasDown(false), 2500);
      return () => window.clearTimeout(timer);
    }
  }, [live.state, wasDown]);

  const zone = useMemo(viewerZone, []);
  const locale = i18n.resolvedLanguage ?? 'en';
  const grid = useMemo(() => buildGrid(m?.slots ?? [], zone), [m?.slots, zone]);
  const tallies = useMemo(() => slotTallies(m ?? { slots: [], participants: [] }), [m]);
  const voters = useMemo(() => placeVoters(m ?? { places: [], participants: [] }), [m]);
  const me = m?.participants.find((p) => p.id === tokens.participantId);

  // A remembered participant that is gone (removed by the organizer) is forgotten.
  useEffect(() => {
    if (m && tokens.participantId && !me && query.isFetchedAfterMount && !query.isFetching) {
      setTokensState(forgetParticipant(id));
    }
  }, [m, me, tokens.participantId, id, query.isFetchedAfterMount, query.isFetching]);

  useEffect(() => {
    if (m && (tokens.participantId || tokens.adminToken)) {
      rememberRecent({ id: m.id, title: m.title, organizer: !!tokens.adminToken });
    }
  }, [m?.id, m?.title, tokens.participantId, tokens.adminToken]);

  useEffect(() => {
    if (m) document.title = `${m.title} · 🍺 ${t('app.name')}`;
  }, [m?.title, t]);

  const notify = useCallback((text: string) => {
    setNotice(text);
    window.setTimeout(() => setNotice((n) => (n === text ? '' : n)), 5000);
  }, []);

  const update = useCallback(
    (fn: (mm: MeetupView) => MeetupView) => qc.setQueryData<MeetupView>(key, (old) => (old ? fn(old) : old)),
    [qc, key],
  );
  const refetch = useCallback(() => void qc.invalidateQueries({ queryKey: key }), [qc, key]);

  const token = tokens.participantToken ?? tokens.adminToken;
  const saveSeq = useRef(0);
  const saveChain = useRef<Promise<boolean>>(Promise.resolve(true));
  const patchMe = useCallback(
    async (patch: ParticipantPatch) => {
      const pid = tokens.participantId;
      if (!pid || !token) return false;
      update((mm) => ({
        ...mm,
        participants: mm.participants.map((p) => (p.id === pid ? { ...p, ...patch } : p)),
      }));
      // Saves go out one after another, so the server applies them in the order they were made;
      // only the answer to the newest one replaces the optimistic state.
      const seq = ++saveSeq.current;
      const run = async () => {
        try {
          const p = await api.patchParticipant(id, pid, patch, token);
          if (seq === saveSeq.current) {
            update((mm) => ({ ...mm, participants: mm.participants.map((x) => (x.id === p.id ? p : x)) }));
          }
          return true;
        } catch (err) {
          notify(errorText(err, t));
          refetch();
          return false;
        }
      };
      const next = saveChain.current.then(run);
      saveChain.current = next.catch(() => false);
      return next;
    },
    [id, tokens.participantId, token, update, notify, refetch, t],
  );

  if (!m) {
    if (query.error) {
      return (
        <div className="card center">
          <p className="big-emoji" aria-hidden="true">🍺💨</p>
          <p role="alert">{errorText(query.error, t)}</p>
          <Link className="btn" to="/">
            {t('app.home')}
          </Link>
        </div>
      );
    }
    return <BeerLoader label={t('meetup.loading')} />;
  }

  if (live.deleted) {
    return (
      <div className="card center">
        <p className="big-emoji" aria-hidden="true">🍻</p>
        <p role="alert">{t('meetup.deleted')}</p>
        <Link className="btn" to="/">
          {t('app.home')}
        </Link>
      </div>
    );
  }

  const isAdmin = !!tokens.adminToken;
  const open = m.status === 'open';
  const ctx: MeetupCtx = {
    m,
    me,
    isAdmin,
    token,
    tokens,
    setTokens: setTokensState,
    zone,
    locale,
    grid,
    tallies,
    voters,
    open,
    update,
    patchMe,
    refetch,
    notify,
    pickForFinal: (sid) => setFinalPick(`${sid}@${Date.now()}`),
    finalPick,
  };
  const sameZone = zone === m.timeZone;
  const offset = utcOffsetLabel(zone, m.slots[0] ? Date.parse(m.slots[0].start) : Date.now());

  return (
    <Ctx.Provider value={ctx}>
      <div className="meetup" data-live={live.state}>
        {live.state === 'reconnecting' && (
          <div className="banner warn" role="status" data-testid="reconnecting">
            📡 {t('meetup.reconnecting')}
          </div>
        )}
        {live.state === 'open' && wasDown && (
          <div className="banner ok" role="status">
            ✅ {t('meetup.reconnected')}
          </div>
        )}

        <header className="meetup-head">
          <div className="title-row">
            <h1>{m.title}</h1>
            <span className={`status status-${m.status}`}>{t(`meetup.status.${m.status}`)}</span>
          </div>
          {m.description && <p className="description">{m.description}</p>}
          <div className="meta">
            <span>{t('meetup.by', { name: m.organizerName })}</span>
            {live.presence !== null && live.presence > 0 && (
              <span className="presence" data-testid="presence" title={t('meetup.presence', { count: live.presence })}>
                <span className="dot" aria-hidden="true" />
                {t('meetup.presence', { count: live.presence })}
              </span>
            )}
            <InviteButton />
          </div>
          <p className="zone-note">
            🌍{' '}
            {sameZone
              ? t('meetup.zoneSame', { zone, offset })
              : t('meetup.zoneOther', { zone, offset, meetupZone: m.timeZone })}
          </p>
          {m.deadline && (
            <p className="deadline-note">
              ⏳{' '}
              {t(Date.parse(m.deadline) > Date.now() ? 'meetup.deadline' : 'meetup.deadlinePassed', {
                when: new Intl.DateTimeFormat(locale, {
                  weekday: 'short',
                  day: 'numeric',
                  month: 'short',
                  hour: 'numeric',
                  minute: '2-digit',
                  timeZone: zone,
                }).format(new Date(m.deadline)),
              })}
            </p>
          )}
          <MeBar />
        </header>

        {m.status === 'finalized' && <FinalizedCard />}
        {m.status === 'closed' && <p className="banner info">🔒 {t('meetup.closedNote')}</p>}
        {isAdmin && <ShareCard fresh={fresh && m.status !== 'finalized'} onDismiss={() => setFresh(false)} />}
        {!me && open && <JoinCard />}

        <div className="columns">
          <div className="col-main">
            <WhenSection />
          </div>
          <div className="col-side">
            <PlacesSection />
            <PeopleSection />
            <Comments />
            {isAdmin && <AdminPanel />}
          </div>
        </div>
        <div className="toast" role="status" aria-live="polite">
          {notice && <p>{notice}</p>}
        </div>
      </div>
    </Ctx.Provider>
  );
}
