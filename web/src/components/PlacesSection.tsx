import { useMemo, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { api } from '../api/client';
import { bestPlaceIds, rankPlaces } from '../lib/tally';
import { errorText, fieldErrors } from '../lib/errors';
import { useMeetupCtx } from './ctx';
import { SuggestionList, usePlaceSuggestions, whereOf } from './PlaceSuggestions';

export function PlacesSection() {
  const { t } = useTranslation();
  const c = useMeetupCtx();
  const { m, me, voters, open } = c;
  const ranked = useMemo(() => rankPlaces(m.places, voters), [m.places, voters]);
  const best = useMemo(() => bestPlaceIds(voters), [voters]);
  const total = Math.max(m.participants.length, 1);
  const canAdd = open && (c.isAdmin || (m.allowParticipantPlaces && !!me));

  const vote = (placeId: string) => {
    if (!me) return;
    const has = me.placeVotes.includes(placeId);
    const next = has ? me.placeVotes.filter((v) => v !== placeId) : [...me.placeVotes, placeId];
    void c.patchMe({ placeVotes: next });
  };

  const remove = async (id: string, name: string) => {
    if (!c.token || !window.confirm(t('where.confirmRemove', { name }))) return;
    c.update((mm) => ({
      ...mm,
      places: mm.places.filter((p) => p.id !== id),
      participants: mm.participants.map((p) => ({ ...p, placeVotes: p.placeVotes.filter((v) => v !== id) })),
    }));
    try {
      await api.removePlace(m.id, id, c.tokens.adminToken ?? c.token);
    } catch (err) {
      c.notify(errorText(err, t));
      c.refetch();
    }
  };

  return (
    <section className="card where" aria-labelledby="where-title">
      <h2 id="where-title">📍 {t('where.title')}</h2>
      {ranked.length === 0 && <p className="muted">{t('where.empty')}</p>}
      <ol className="places">
        {ranked.map((p) => {
          const vs = voters.get(p.id) ?? [];
          const mineVote = !!me?.placeVotes.includes(p.id);
          const canRemove = open && (c.isAdmin || (!!me && p.addedBy === me.name));
          return (
            <li key={p.id} className={`place${best.has(p.id) ? ' leading' : ''}`} data-place={p.name}>
              <div className="place-main">
                <div className="place-title">
                  <strong>{p.name}</strong>
                  {best.has(p.id) && <span className="badge gold">🏆 {t('where.leading')}</span>}
                </div>
                {p.address && <div className="muted small">{p.address}</div>}
                {p.link && (
                  <a className="small" href={p.link} target="_blank" rel="noopener noreferrer">
                    {t('where.open')} ↗
                  </a>
                )}
                <div className="muted small">{t('where.addedBy', { name: p.addedBy })}</div>
                <div className="bar" aria-hidden="true">
                  <div className="bar-fill" style={{ width: `${(vs.length / total) * 100}%` }} />
                </div>
                <div className="voters">
                  <span className="vote-count">{t('where.votes', { count: vs.length })}</span>
                  {vs.map((n) => (
                    <span key={n} className="name-chip">
                      {n}
                    </span>
                  ))}
                </div>
              </div>
              <div className="place-actions">
                {me && open && (
                  <button
                    type="button"
                    className={`vote-btn${mineVote ? ' on' : ''}`}
                    aria-pressed={mineVote}
                    aria-label={t('where.voteLabel', { name: p.name })}
                    onClick={() => vote(p.id)}
                  >
                    <span aria-hidden="true">{mineVote ? '🍻' : '🍺'}</span> {mineVote ? t('where.voted') : t('where.vote')}
                  </button>
                )}
                {canRemove && (
                  <button type="button" className="link-btn danger small" onClick={() => void remove(p.id, p.name)}>
                    {t('where.remove')}
                  </button>
                )}
              </div>
            </li>
          );
        })}
      </ol>
      {canAdd && <AddPlace />}
    </section>
  );
}

function AddPlace() {
  const { t } = useTranslation();
  const c = useMeetupCtx();
  const [name, setName] = useState('');
  const [where, setWhere] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const suggestions = usePlaceSuggestions(name);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!name.trim()) {
      setErrors({ name: t('errors.required') });
      return;
    }
    const token = c.tokens.adminToken ?? c.token;
    if (!token) return;
    setBusy(true);
    const w = where.trim();
    const isLink = /^https?:\/\//i.test(w);
    try {
      const place = await api.addPlace(
        c.m.id,
        { name: name.trim(), ...(w ? (isLink ? { link: w } : { address: w }) : {}) },
        token,
      );
      c.update((m) => (m.places.some((p) => p.id === place.id) ? m : { ...m, places: [...m.places, place] }));
      setName('');
      setWhere('');
      setErrors({});
    } catch (err) {
      const f = fieldErrors(err);
      const mapped: Record<string, string> = {};
      if (f.name) mapped.name = f.name;
      if (f.address || f.link) mapped.where = f.address || f.link;
      if (!mapped.name && !mapped.where) mapped.form = Object.values(f)[0] ?? errorText(err, t);
      setErrors(mapped);
    } finally {
      setBusy(false);
    }
  };

  return (
    <details className="add-place-wrap">
      <summary>+ {t('where.add')}</summary>
    <form className="add-place" onSubmit={(e) => void submit(e)} noValidate>
      <div className="row wrap">
        <div className={`field grow${errors.name ? ' has-error' : ''}`}>
          <label htmlFor="new-place-name">{t('where.name')}</label>
          <input
            id="new-place-name"
            value={name}
            maxLength={60}
            list="new-place-suggestions"
            autoComplete="off"
            onChange={(e) => {
              setName(e.target.value);
              const w = where ? undefined : whereOf(suggestions, e.target.value);
              if (w) setWhere(w);
              setErrors({});
            }}
            aria-invalid={!!errors.name}
          />
          <SuggestionList id="new-place-suggestions" items={suggestions} />
          {errors.name && <p className="error" role="alert">{errors.name}</p>}
        </div>
        <div className={`field grow${errors.where ? ' has-error' : ''}`}>
          <label htmlFor="new-place-where">{t('where.where')}</label>
          <input id="new-place-where" value={where} onChange={(e) => setWhere(e.target.value)} aria-invalid={!!errors.where} />
          {errors.where && <p className="error" role="alert">{errors.where}</p>}
        </div>
        <button type="submit" className="btn" disabled={busy}>
          + {t('where.submit')}
        </button>
      </div>
      {errors.form && <p className="error" role="alert">{errors.form}</p>}
    </form>
    </details>
  );
}
