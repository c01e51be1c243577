import { useEffect, useRef, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { api, ApiError } from '../api/client';
import { useJoin, useRemoveParticipant } from '../api/mutations';
import { errorText, fieldErrors } from '../lib/errors';
import { adminUrl, personalUrl, shareUrl } from '../lib/links';
import { LIMITS } from '../api/limits';
import { forgetParticipant, getName, rememberRecent, setName, setTokens } from '../lib/storage';
import { formatRange } from '../lib/timegrid';
import { CopyField } from './CopyField';
import { useMeetupData, usePageUi, useSession } from './ctx';
import { PinForm, ReclaimForm } from './Pin';

export { shareUrl };

/** Moves focus to a heading (and so the screen to its card) when the card appears. */
function useFocusOnMount<T extends HTMLElement>(when = true) {
  const ref = useRef<T>(null);
  useEffect(() => {
    if (!when || !ref.current) return;
    // The whole card from its top (with a little air, see scroll-margin in styles.css).
    (ref.current.closest('section') ?? ref.current).scrollIntoView?.({ block: 'start' });
    ref.current.focus({ preventScroll: true });
  }, [when]);
  return ref;
}

/** Share link + organizer link, big right after creating, compact later. */
export function ShareCard({ fresh, onDismiss }: { fresh: boolean; onDismiss: () => void }) {
  const { t } = useTranslation();
  const { m } = useMeetupData();
  const { tokens } = useSession();
  const heading = useFocusOnMount<HTMLHeadingElement>(fresh);
  const admin = adminUrl(m.id, tokens);
  if (!fresh) {
    return (
      <details className="card share compact">
        <summary>🔑 {t('share.links')}</summary>
        <CopyField label={t('share.shareLink')} value={shareUrl(m.id)} />
        <CopyField label={t('share.adminLink')} value={admin} secret />
        <OrganizerPin />
      </details>
    );
  }
  return (
    <section className="card share fresh" aria-labelledby="share-title">
      <h2 id="share-title" tabIndex={-1} ref={heading}>
        {t('share.title')}
      </h2>
      <p>{t('share.lead')}</p>
      <CopyField label={t('share.shareLink')} value={shareUrl(m.id)} />
      <CopyField label={t('share.adminLink')} value={admin} secret />
      <OrganizerPin />
      <div className="row wrap">
        {'share' in navigator && (
          <button
            type="button"
            className="btn primary small"
            onClick={() =>
              void navigator.share({ title: m.title, text: t('share.shareText'), url: shareUrl(m.id) }).catch(() => {})
            }
          >
            📤 {t('share.send')}
          </button>
        )}
        <button type="button" className="link-btn" onClick={onDismiss}>
          {t('share.dismiss')}
        </button>
      </div>
    </section>
  );
}

/** The organizer's PIN: their name plus it bring answers and organizer controls to any device. */
function OrganizerPin() {
  const { t } = useTranslation();
  const { me, tokens } = useSession();
  if (!me?.isOrganizer || !tokens.participantToken || !tokens.adminToken) return null;
  return (
    <>
      <h3 className="pin-title">🔐 {t('pin.title')}</h3>
      <PinForm />
    </>
  );
}

export function InviteButton() {
  const { t } = useTranslation();
  const { m } = useMeetupData();
  const [copied, setCopied] = useState(false);
  const share = async () => {
    const url = shareUrl(m.id);
    const nav = navigator as Navigator & { share?: (d: ShareData) => Promise<void> };
    if (nav.share && window.matchMedia?.('(pointer: coarse)').matches) {
      try {
        await nav.share({ title: m.title, text: t('share.shareText'), url });
        return;
      } catch {
        // fall back to copying
      }
    }
    try {
      await navigator.clipboard.writeText(url);
      setCopied(true);
      window.setTimeout(() => setCopied(false), 1800);
    } catch {
      window.prompt(t('share.shareLink'), url);
    }
  };
  return (
    <button type="button" className="btn ghost small" onClick={() => void share()}>
      🔗 {copied ? t('share.copied') : t('share.invite')}
    </button>
  );
}

export function JoinCard() {
  const { t } = useTranslation();
  const { m } = useMeetupData();
  const session = useSession();
  const join = useJoin(m.id);
  const [name, setNameState] = useState(getName);
  const [error, setError] = useState('');
  // The name was taken: its owner may get it back with their PIN.
  const [taken, setTaken] = useState('');
  const [reclaiming, setReclaiming] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setReclaiming(false);
    const n = name.trim();
    if (!n) {
      setError(t('errors.required'));
      input.current?.focus();
      return;
    }
    join.mutate(n, {
      onSuccess: (res) => {
        const next = setTokens(m.id, { participantId: res.participant.id, participantToken: res.token });
        setName(n);
        rememberRecent({ id: m.id, title: m.title, organizer: !!next.adminToken });
        session.setTokens(next);
        session.setJustJoined(true);
        setError('');
      },
      onError: (err) => {
        const f = fieldErrors(err);
        if (err instanceof ApiError && err.status === 409) {
          setError(m.status === 'open' ? t('errors.nameTaken') : t('errors.closed'));
          setTaken(m.status === 'open' ? n : '');
        } else if (f.name) setError(f.name);
        else setError(errorText(err, t));
        input.current?.focus();
      },
    });
  };

  return (
    <section className="card join" aria-labelledby="join-title">
      <h2 id="join-title">👋 {t('join.title')}</h2>
      <p>{t('join.lead')}</p>
      <form className="row" onSubmit={submit} noValidate>
        <div className={`field grow${error ? ' has-error' : ''}`}>
          <label htmlFor="join-name">{t('join.name')}</label>
          <input
            id="join-name"
            ref={input}
            name="name"
            value={name}
            maxLength={LIMITS.name}
            autoComplete="given-name"
            onChange={(e) => setNameState(e.target.value)}
            aria-invalid={!!error}
            aria-describedby={error ? 'join-name-error' : undefined}
          />
          {error && (
            <p className="error" id="join-name-error" role="alert">
              {error}
            </p>
          )}
        </div>
        <button type="submit" className="btn primary" disabled={join.isPending}>
          🍺 {t('join.submit')}
        </button>
      </form>
      {taken && taken === name.trim() && !reclaiming && (
        <button type="button" className="btn small" data-testid="thats-you" onClick={() => setReclaiming(true)}>
          🔐 {t('pin.thatsYou')}
        </button>
      )}
      {reclaiming && taken === name.trim() && <ReclaimForm name={taken} />}
    </section>
  );
}

/** After the decision (or while answers are closed) a newcomer cannot join: say so, kindly. */
export function ClosedJoinCard() {
  const { t } = useTranslation();
  const { m } = useMeetupData();
  const [reclaiming, setReclaiming] = useState(false);
  return (
    <section className="card join closed" aria-labelledby="late-title" data-testid="late">
      <h2 id="late-title">{m.status === 'finalized' ? `🍻 ${t('late.titleDecided')}` : `🔒 ${t('late.titleClosed')}`}</h2>
      <p>{m.status === 'finalized' ? t('late.leadDecided') : t('late.leadClosed')}</p>
      <p className="muted small">{t('late.comeBack')}</p>
      {reclaiming ? (
        <ReclaimForm />
      ) : (
        <button type="button" className="link-btn small" onClick={() => setReclaiming(true)}>
          🔐 {t('pin.thatsYou')}
        </button>
      )}
    </section>
  );
}

/** Right after joining: the one moment to keep the personal link. */
export function SaveLinkCard() {
  const { t } = useTranslation();
  const { m } = useMeetupData();
  const { me, tokens, setJustJoined } = useSession();
  const heading = useFocusOnMount<HTMLHeadingElement>(true);
  if (!me || !tokens.participantToken) return null;
  const url = personalUrl(m.id, tokens.participantToken);
  return (
    <section className="card share fresh save-link" aria-labelledby="save-link-title" data-testid="save-link">
      <h2 id="save-link-title" tabIndex={-1} ref={heading}>
        🔖 {t('personal.title', { name: me.name })}
      </h2>
      <p>{t('personal.lead')}</p>
      <CopyField label={t('personal.link')} value={url} secret />
      <h3 className="pin-title">🔐 {t('pin.title')}</h3>
      <PinForm />
      <div className="row wrap">
        {'share' in navigator && (
          <button
            type="button"
            className="btn small"
            onClick={() => void navigator.share({ title: m.title, url }).catch(() => {})}
          >
            📤 {t('personal.send')}
          </button>
        )}
        <button
          type="button"
          className="btn primary small"
          onClick={() => {
            setJustJoined(false);
            // On to painting: the grid's heading takes the focus instead of the vanished button.
            const next = document.getElementById('when-title');
            next?.scrollIntoView?.({ block: 'start' });
            next?.focus({ preventScroll: true });
          }}
        >
          {t('personal.done')}
        </button>
      </div>
    </section>
  );
}

export function MeBar() {
  const { t } = useTranslation();
  const { m, open } = useMeetupData();
  const { me, token, tokens, isAdmin, setTokens: setSessionTokens, setJustJoined } = useSession();
  const { notify } = usePageUi();
  const remove = useRemoveParticipant(m.id, token);
  const [explain, setExplain] = useState(false);
  if (!me) return null;
  const link = tokens.participantToken && !isAdmin ? personalUrl(m.id, tokens.participantToken) : '';
  const forget = () => {
    setExplain(false);
    setJustJoined(false);
    setSessionTokens(forgetParticipant(m.id));
  };
  const leave = () => {
    if (!window.confirm(t('join.confirmLeave'))) return;
    remove.mutate(me.id, {
      onSuccess: () => setSessionTokens(forgetParticipant(m.id)),
      onError: (err) => notify(errorText(err, t)),
    });
  };
  return (
    <div className="me-bar-wrap">
      <p className="me-bar">
        <span className="me-name">🙂 {t('join.youAre', { name: me.name })}</span>
        {!isAdmin && (
          <button type="button" className="link-btn small" aria-expanded={explain} onClick={() => setExplain((x) => !x)}>
            {t('join.notYou')}
          </button>
        )}
        {!me.isOrganizer && open && (
          <button type="button" className="link-btn danger small" onClick={leave}>
            {t('join.leave')}
          </button>
        )}
      </p>
      {link && !explain && (
        <details className="my-link">
          <summary>🔖 {t('personal.summary')}</summary>
          <CopyField label={t('personal.link')} value={link} secret />
          <h3 className="pin-title">🔐 {t('pin.summary')}</h3>
          <PinForm />
        </details>
      )}
      {explain && (
        <div className="card not-you" role="region" aria-label={t('join.notYou')}>
          <p>{t('personal.notYouLead', { name: me.name })}</p>
          {link && <CopyField label={t('personal.linkOf', { name: me.name })} value={link} secret />}
          <div className="row wrap">
            <button type="button" className="btn small" onClick={forget}>
              {t('personal.forget')}
            </button>
            <button type="button" className="link-btn small" onClick={() => setExplain(false)}>
              {t('personal.cancel')}
            </button>
          </div>
        </div>
      )}
    </div>
  );
}

export function FinalizedCard() {
  const { t } = useTranslation();
  const { m, zone, locale } = useMeetupData();
  const d = m.decision;
  if (!d) return null;
  const place = d.placeId ? m.places.find((p) => p.id === d.placeId) : undefined;
  // Who can come for the whole range: yes or maybe on every slot in it. The organizer decided it,
  // so they are coming too.
  const [from, to] = [Date.parse(d.start), Date.parse(d.end)];
  const inRange = m.slots.filter((s) => Date.parse(s.start) >= from && Date.parse(s.end) <= to).map((s) => s.id);
  const coming = m.participants.filter(
    (p) => p.isOrganizer || (inRange.length > 0 && inRange.every((id) => p.availability[id])),
  );
  return (
    <section className="card final" aria-labelledby="final-title">
      <div className="bubbles" aria-hidden="true">
        {Array.from({ length: 12 }, (_, i) => (
          <span key={i} style={{ left: `${(i * 83) % 100}%`, animationDelay: `${(i % 6) * 0.5}s` }} />
        ))}
      </div>
      <h2 id="final-title" tabIndex={-1}>{t('final.title')}</h2>
      <dl>
        <dt>{t('final.when')}</dt>
        <dd className="final-when">{formatRange(d.start, d.end, zone, locale)}</dd>
        <dt>{t('final.where')}</dt>
        <dd className="final-where">
          {place ? (
            <>
              <strong>{place.name}</strong>
              {place.address && <div className="small">{place.address}</div>}
              {place.link && (
                <a className="small" href={place.link} target="_blank" rel="noopener noreferrer">
                  {t('where.open')} ↗
                </a>
              )}
            </>
          ) : (
            t('final.placeTbd')
          )}
        </dd>
        {d.note && (
          <>
            <dt>{t('final.note')}</dt>
            <dd>{d.note}</dd>
          </>
        )}
        {coming.length > 0 && (
          <>
            <dt>{t('final.coming')}</dt>
            <dd className="who-names">
              {coming.map((p) => (
                <span key={p.id} className="name-chip" title={p.name}>
                  {p.name}
                </span>
              ))}
            </dd>
          </>
        )}
      </dl>
      <a className="btn primary big" href={api.icsUrl(m.id)} download={`${m.title || 'meetup'}.ics`}>
        📅 {t('final.ics')}
      </a>
      <p className="cheers">{t('final.cheers')}</p>
    </section>
  );
}
