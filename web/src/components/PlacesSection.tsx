import { useMemo, useRef, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { useAddPlace, useRemovePlace } from '../api/mutations';
import { LIMITS } from '../api/limits';
import { bestPlaceIds, rankPlaces } from '../lib/tally';
import { errorText, fieldErrors } from '../lib/errors';
import { useMeetupData, useMySaves, usePageUi, useSession } from './ctx';
import { SuggestionList, usePlaceSuggestions, whereOf } from './PlaceSuggestions';

export function PlacesSection() {
  const { t } = useTranslation();
  const { m, voters, open } = useMeetupData();
  const { me, isAdmin, token, tokens } = useSession();
  const saves = useMySaves();
  const { notify } = usePageUi();
  const removePlace = useRemovePlace(m.id, tokens.adminToken ?? token);
  const ranked = useMemo(() => rankPlaces(m.places, voters), [m.places, voters]);
  const best = useMemo(() => bestPlaceIds(voters), [voters]);
  const total = Math.max(m.participants.length, 1);
  const canAdd = open && (isAdmin || (m.allowParticipantPlaces && !!me));

  const vote = (placeId: string) => {
    if (!me) return;
    const has = me.placeVotes.includes(placeId);
    const next = has ? me.placeVotes.filter((v) => v !== placeId) : [...me.placeVotes, placeId];
    saves.save({ placeVotes: next });
  };

  const remove = (id: string, name: string) => {
    if (!token || !window.confirm(t('where.confirmRemove', { name }))) return;
    removePlace.mutate(id, { onError: (err) => notify(errorText(err, t)) });
  };

  return (
    <section className="card where" aria-labelledby="where-title">
      <h2 id="where-title">📍 {t('where.title')}</h2>
      {ranked.length === 0 && <p className="muted">{t('where.empty')}</p>}
      <ol className="places">
        {ranked.map((p) => {
          const vs = voters.get(p.id) ?? [];
          const mineVote = !!me?.placeVotes.includes(p.id);
          const canRemove = open && (isAdmin || (!!me && p.addedBy === me.name));
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
                    <span key={n} className="name-chip" title={n}>
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
                  <button type="button" className="link-btn danger small" onClick={() => remove(p.id, p.name)}>
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
  const { m } = useMeetupData();
  const { token, tokens } = useSession();
  const add = useAddPlace(m.id, tokens.adminToken ?? token);
  const [name, setName] = useState('');
  const [where, setWhere] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const nameInput = useRef<HTMLInputElement>(null);
  const whereInput = useRef<HTMLInputElement>(null);
  const suggestions = usePlaceSuggestions(name);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!name.trim()) {
      setErrors({ name: t('errors.required') });
      nameInput.current?.focus();
      return;
    }
    const w = where.trim();
    const isLink = /^https?:\/\//i.test(w);
    add.mutate(
      { name: name.trim(), ...(w ? (isLink ? { link: w } : { address: w }) : {}) },
      {
        onSuccess: () => {
          setName('');
          setWhere('');
          setErrors({});
          // Ready for the next one.
          nameInput.current?.focus();
        },
        onError: (err) => {
          const f = fieldErrors(err);
          const mapped: Record<string, string> = {};
          if (f.name) mapped.name = f.name;
          if (f.address || f.link) mapped.where = f.address || f.link;
          if (!mapped.name && !mapped.where) mapped.form = Object.values(f)[0] ?? errorText(err, t);
          setErrors(mapped);
          (mapped.where && !mapped.name ? whereInput : nameInput).current?.focus();
        },
      },
    );
  };

  return (
    <details
      className="add-place-wrap"
      onToggle={(e) => {
        if (e.currentTarget.open) nameInput.current?.focus();
      }}
    >
      <summary>+ {t('where.add')}</summary>
      <form className="add-place" onSubmit={submit} noValidate>
        <div className="row wrap">
          <div className={`field grow${errors.name ? ' has-error' : ''}`}>
            <label htmlFor="new-place-name">{t('where.name')}</label>
            <input
              id="new-place-name"
              ref={nameInput}
              value={name}
              maxLength={LIMITS.placeName}
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
            <input id="new-place-where" ref={whereInput} value={where} onChange={(e) => setWhere(e.target.value)} aria-invalid={!!errors.where} />
            {errors.where && <p className="error" role="alert">{errors.where}</p>}
          </div>
          <button type="submit" className="btn" disabled={add.isPending}>
            + {t('where.submit')}
          </button>
        </div>
        {errors.form && <p className="error" role="alert">{errors.form}</p>}
      </form>
    </details>
  );
}
