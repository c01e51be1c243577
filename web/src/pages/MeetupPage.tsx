import { useCallback, useEffect, useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useLocation, useParams } from 'react-router';
import { useQuery } from '@tanstack/react-query';
import { api, ApiError } from '../api/client';
import { meetupKey, useSaveMe, withPending } from '../api/mutations';
import { useLive } from '../api/useLive';
import { AdminPanel } from '../components/AdminPanel';
import { BeerLoader } from '../components/BeerLoader';
import { ClosedJoinCard, FinalizedCard, InviteButton, JoinCard, MeBar, SaveLinkCard, ShareCard } from '../components/Cards';
import { Comments } from '../components/Comments';
import {
  MeetupDataCtx,
  SavesCtx,
  SessionCtx,
  UiCtx,
  type MeetupData,
  type MySaves,
  type PageUi,
  type Session,
} from '../components/ctx';
import { PeopleSection } from '../components/PeopleSection';
import { PlacesSection } from '../components/PlacesSection';
import { WhenSection } from '../components/WhenSection';
import { errorText } from '../lib/errors';
import { parseHash } from '../lib/links';
import { forgetParticipant, getTokens, rememberRecent, setTokens as storeTokens, type MeetupTokens } from '../lib/storage';
import { placeVoters, slotTallies } from '../lib/tally';
import { buildGrid, utcOffsetLabel, viewerZone } from '../lib/timegrid';

/**
 * Reads the organizer link (`#admin=…&pid=…&pt=…`) or a personal link (`#p=…`) into local storage
 * and clears it from the address bar. A personal link replaces whoever this browser knew.
 */
function useHashTokens(id: string): { tokens: MeetupTokens; personal: boolean } {
  return useMemo(() => {
    const h = parseHash(window.location.hash);
    const { personal, ...patch } = h;
    if (Object.keys(patch).length) {
      if (personal) storeTokens(id, { participantId: undefined, participantToken: patch.participantToken });
      else storeTokens(id, patch);
      window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
    }
    return { tokens: getTokens(id), personal: !!personal };
  }, [id]);
}

export default function MeetupPage() {
  const { id = '' } = useParams();
  const { t, i18n } = useTranslation();
  const location = useLocation();
  const initial = useHashTokens(id);
  const [tokens, setTokensState] = useState<MeetupTokens>(initial.tokens);
  // A personal link gives the token; the server says whose it is.
  const [resolving, setResolving] = useState(initial.personal || (!!initial.tokens.participantToken && !initial.tokens.participantId));
  const [fresh, setFresh] = useState(() => !!(location.state as { justCreated?: boolean } | null)?.justCreated);
  const [justJoined, setJustJoined] = useState(false);
  const [notice, setNotice] = useState('');
  const [finalPick, setFinalPick] = useState<string | null>(null);

  const [liveOpen, setLiveOpen] = useState(false);
  const query = useQuery({
    queryKey: meetupKey(id),
    queryFn: () => api.getMeetup(id),
    enabled: !!id,
    // Without the live connection (a proxy that blocks WebSockets, or while reconnecting), poll.
    refetchInterval: liveOpen ? false : 5000,
  });
  const live = useLive(id, !!id && !(query.error instanceof ApiError && query.error.status === 404));
  useEffect(() => setLiveOpen(live.state === 'open'), [live.state]);

  const notify = useCallback((text: string) => {
    setNotice(text);
    window.setTimeout(() => setNotice((n) => (n === text ? '' : n)), 6000);
  }, []);

  useEffect(() => {
    if (!resolving) return;
    const token = tokens.participantToken;
    if (!token) {
      setResolving(false);
      return;
    }
    let cancelled = false;
    api
      .me(id, token)
      .then((p) => {
        if (cancelled) return;
        setTokensState(storeTokens(id, { participantId: p.id, participantToken: token }));
        if (initial.personal) notify(t('personal.welcomeBack', { name: p.name }));
      })
      .catch((err) => {
        if (cancelled) return;
        if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404)) {
          setTokensState(forgetParticipant(id));
          notify(t('personal.linkInvalid'));
        } else notify(errorText(err, t));
      })
      .finally(() => !cancelled && setResolving(false));
    return () => {
      cancelled = true;
    };
  }, [resolving, id, tokens.participantToken, initial.personal, notify, t]);

  const token = tokens.participantToken ?? tokens.adminToken;
  const saves = useSaveMe(id, tokens.participantId, token, (err) => notify(errorText(err, t)));
  const retrySaves = saves.retryNow;
  // The connection is back: send what is waiting.
  useEffect(() => {
    if (live.state === 'open') retrySaves();
  }, [live.state, retrySaves]);

  const m = useMemo(
    () => (query.data ? withPending(query.data, tokens.participantId, saves.pending) : undefined),
    [query.data, tokens.participantId, saves.pending],
  );

  // Show "back online" for a moment after a reconnect.
  const [wasDown, setWasDown] = useState(false);
  useEffect(() => {
    if (live.state === 'reconnecting') setWasDown(true);
    if (live.state === 'open' && wasDown) {
      const timer = window.setTimeout(() => setWasDown(false), 4000);
      return () => window.clearTimeout(timer);
    }
  }, [live.state, wasDown]);
  const [showRecovered, setShowRecovered] = useState(false);
  useEffect(() => {
    if (saves.state !== 'recovered') return;
    setShowRecovered(true);
    const timer = window.setTimeout(() => setShowRecovered(false), 6000);
    return () => window.clearTimeout(timer);
  }, [saves.state]);

  const zone = useMemo(viewerZone, []);
  const locale = i18n.resolvedLanguage ?? 'en';
  const grid = useMemo(() => buildGrid(m?.slots ?? [], zone), [m?.slots, zone]);
  const tallies = useMemo(() => slotTallies(m ?? { slots: [], participants: [] }), [m]);
  const voters = useMemo(() => placeVoters(m ?? { places: [], participants: [] }), [m]);
  const me = m?.participants.find((p) => p.id === tokens.participantId);

  // A remembered participant that is gone (removed by the organizer) is forgotten.
  useEffect(() => {
    if (m && tokens.participantId && !me && !resolving && query.isFetchedAfterMount && !query.isFetching) {
      setTokensState(forgetParticipant(id));
    }
  }, [m, me, tokens.participantId, id, resolving, query.isFetchedAfterMount, query.isFetching]);

  useEffect(() => {
    if (m && (tokens.participantId || tokens.adminToken)) {
      rememberRecent({ id: m.id, title: m.title, organizer: !!tokens.adminToken });
    }
  }, [m?.id, m?.title, tokens.participantId, tokens.adminToken]);

  useEffect(() => {
    if (m) document.title = `${m.title} · 🍺 ${t('app.name')}`;
  }, [m?.title, t]);

  const isAdmin = !!tokens.adminToken;
  const open = m?.status === 'open';
  const data = useMemo<MeetupData | null>(
    () => (m ? { m, zone, locale, grid, tallies, voters, open } : null),
    [m, zone, locale, grid, tallies, voters, open],
  );
  const session = useMemo<Session>(
    () => ({ me, isAdmin, token, tokens, setTokens: setTokensState, justJoined, setJustJoined }),
    [me, isAdmin, token, tokens, justJoined],
  );
  const mySaves = useMemo<MySaves>(() => ({ state: saves.state, save: saves.save }), [saves.state, saves.save]);
  const ui = useMemo<PageUi>(
    () => ({ notify, pickForFinal: (sid) => setFinalPick(`${sid}@${Date.now()}`), finalPick }),
    [notify, finalPick],
  );

  if (!m || !data) {
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

  const sameZone = zone === m.timeZone;
  const offset = utcOffsetLabel(zone, m.slots[0] ? Date.parse(m.slots[0].start) : Date.now());

  return (
    <MeetupDataCtx.Provider value={data}>
      <SessionCtx.Provider value={session}>
        <SavesCtx.Provider value={mySaves}>
          <UiCtx.Provider value={ui}>
            <div className="meetup" data-live={live.state} data-save={saves.state}>
              {saves.state === 'offline' ? (
                <div className="banner warn" role="status" data-testid="unsaved">
                  ⚠️ {t('meetup.unsaved')}
                </div>
              ) : (
                live.state === 'reconnecting' && (
                  <div className="banner warn" role="status" data-testid="reconnecting">
                    📡 {t('meetup.reconnecting')}
                  </div>
                )
              )}
              {showRecovered && saves.state === 'recovered' ? (
                <div className="banner ok" role="status" data-testid="recovered">
                  ✅ {t('meetup.savedAfterReconnect')}
                </div>
              ) : (
                live.state === 'open' &&
                wasDown && (
                  <div className="banner ok" role="status">
                    ✅ {t('meetup.reconnected')}
                  </div>
                )
              )}

              <header className="meetup-head">
                <div className="title-row">
                  <h1>{m.title}</h1>
                  <span className={`status status-${m.status}`}>{t(`meetup.status.${m.status}`)}</span>
                </div>
                {m.description && <p className="description">{m.description}</p>}
                <div className="meta">
                  <span className="by">{t('meetup.by', { name: m.organizerName })}</span>
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
              {me && justJoined && !isAdmin && <SaveLinkCard />}
              {!me && !resolving && (open ? <JoinCard /> : <ClosedJoinCard />)}

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
          </UiCtx.Provider>
        </SavesCtx.Provider>
      </SessionCtx.Provider>
    </MeetupDataCtx.Provider>
  );
}
