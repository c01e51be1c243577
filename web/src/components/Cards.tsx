import { useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { api, ApiError } from '../api/client';
import { errorText, fieldErrors } from '../lib/errors';
import { forgetParticipant, getName, rememberRecent, setName, setTokens } from '../lib/storage';
import { formatRange, viewerZone } from '../lib/timegrid';
import { CopyField } from './CopyField';
import { useMeetupCtx } from './ctx';

export function shareUrl(id: string) {
  return `${window.location.origin}/m/${encodeURIComponent(id)}`;
}

/** Share link + organizer link, big right after creating, compact later. */
export function ShareCard({ fresh, onDismiss }: { fresh: boolean; onDismiss: () => void }) {
  const { t } = useTranslation();
  const c = useMeetupCtx();
  const { m, tokens } = c;
  const admin = new URLSearchParams();
  if (tokens.adminToken) admin.set('admin', tokens.adminToken);
  if (tokens.participantId) admin.set('pid', tokens.participantId);
  if (tokens.participantToken) admin.set('pt', tokens.participantToken);
  const adminUrl = `${shareUrl(m.id)}#${admin.toString()}`;
  if (!fresh) {
    return (
      <details className="card share compact">
        <summary>🔑 {t('share.links')}</summary>
        <CopyField label={t('share.shareLink')} value={shareUrl(m.id)} />
        <CopyField label={t('share.adminLink')} value={adminUrl} secret />
      </details>
    );
  }
  return (
    <section className="card share fresh" aria-labelledby="share-title">
      <h2 id="share-title">{t('share.title')}</h2>
      <p>{t('share.lead')}</p>
      <CopyField label={t('share.shareLink')} value={shareUrl(m.id)} />
      <CopyField label={t('share.adminLink')} value={adminUrl} secret />
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

export function InviteButton() {
  const { t } = useTranslation();
  const c = useMeetupCtx();
  const [copied, setCopied] = useState(false);
  const share = async () => {
    const url = shareUrl(c.m.id);
    const nav = navigator as Navigator & { share?: (d: ShareData) => Promise<void> };
    if (nav.share && window.matchMedia?.('(pointer: coarse)').matches) {
      try {
        await nav.share({ title: c.m.title, text: t('share.shareText'), url });
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
  const c = useMeetupCtx();
  const [name, setNameState] = useState(getName);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const n = name.trim();
    if (!n) {
      setError(t('errors.required'));
      return;
    }
    setBusy(true);
    try {
      const res = await api.join(c.m.id, { name: n, timeZone: viewerZone() });
      const next = setTokens(c.m.id, { participantId: res.participant.id, participantToken: res.token });
      setName(n);
      rememberRecent({ id: c.m.id, title: c.m.title, organizer: !!next.adminToken });
      c.update((m) =>
        m.participants.some((p) => p.id === res.participant.id)
          ? m
          : { ...m, participants: [...m.participants, res.participant] },
      );
      c.setTokens(next);
      setError('');
    } catch (err) {
      const f = fieldErrors(err);
      if (err instanceof ApiError && err.status === 409) {
        setError(c.m.status === 'open' ? t('errors.nameTaken') : t('errors.closed'));
      } else if (f.name) setError(f.name);
      else setError(errorText(err, t));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card join" aria-labelledby="join-title">
      <h2 id="join-title">👋 {t('join.title')}</h2>
      <p>{t('join.lead')}</p>
      <form className="row" onSubmit={(e) => void submit(e)} noValidate>
        <div className={`field grow${error ? ' has-error' : ''}`}>
          <label htmlFor="join-name">{t('join.name')}</label>
          <input
            id="join-name"
            name="name"
            value={name}
            maxLength={60}
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
        <button type="submit" className="btn primary" disabled={busy}>
          🍺 {t('join.submit')}
        </button>
      </form>
    </section>
  );
}

export function MeBar() {
  const { t } = useTranslation();
  const c = useMeetupCtx();
  if (!c.me) return null;
  const switchUser = () => {
    c.setTokens(forgetParticipant(c.m.id));
  };
  const leave = async () => {
    const me = c.me;
    if (!me || !c.token || !window.confirm(t('join.confirmLeave'))) return;
    try {
      await api.removeParticipant(c.m.id, me.id, c.token);
      c.update((m) => ({ ...m, participants: m.participants.filter((p) => p.id !== me.id) }));
      c.setTokens(forgetParticipant(c.m.id));
    } catch (err) {
      c.notify(errorText(err, t));
    }
  };
  return (
    <p className="me-bar">
      <span>🙂 {t('join.youAre', { name: c.me.name })}</span>
      {!c.isAdmin && (
        <button type="button" className="link-btn small" onClick={switchUser}>
          {t('join.notYou')}
        </button>
      )}
      {!c.me.isOrganizer && c.open && (
        <button type="button" className="link-btn danger small" onClick={() => void leave()}>
          {t('join.leave')}
        </button>
      )}
    </p>
  );
}

export function FinalizedCard() {
  const { t } = useTranslation();
  const c = useMeetupCtx();
  const { m, zone, locale } = c;
  const d = m.decision;
  if (!d) return null;
  const place = d.placeId ? m.places.find((p) => p.id === d.placeId) : undefined;
  // Who can come for the whole range: yes or maybe on every slot in it.
  const [from, to] = [Date.parse(d.start), Date.parse(d.end)];
  const inRange = m.slots.filter((s) => Date.parse(s.start) >= from && Date.parse(s.end) <= to).map((s) => s.id);
  const coming = m.participants.filter((p) => inRange.length > 0 && inRange.every((id) => p.availability[id]));
  return (
    <section className="card final" aria-labelledby="final-title">
      <div className="bubbles" aria-hidden="true">
        {Array.from({ length: 12 }, (_, i) => (
          <span key={i} style={{ left: `${(i * 83) % 100}%`, animationDelay: `${(i % 6) * 0.5}s` }} />
        ))}
      </div>
      <h2 id="final-title">{t('final.title')}</h2>
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
                <span key={p.id} className="name-chip">
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
