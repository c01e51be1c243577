import { lazy, Suspense, useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate } from 'react-router';
import { useQueryClient } from '@tanstack/react-query';
import * as z from 'zod/mini';
import { api } from '../api/client';
import { LIMITS } from '../api/limits';
import type { SlotMinutes } from '../api/types';
import { Field } from '../components/Field';
import { Joke } from '../components/BeerLoader';
import { SuggestionList, usePlaceSuggestions, whereOf } from '../components/PlaceSuggestions';
import { errorText, fieldErrors, unplacedErrors } from '../lib/errors';
import { getName, getRecent, rememberRecent, setName, setTokens } from '../lib/storage';
import { nextDays, viewerZone } from '../lib/timegrid';

interface PlaceRow {
  key: number;
  name: string;
  where: string;
}

const schema = z.object({
  title: z.string().check(z.trim(), z.minLength(1, 'errors.required'), z.maxLength(LIMITS.title, 'errors.tooLong')),
  organizerName: z
    .string()
    .check(z.trim(), z.minLength(1, 'errors.required'), z.maxLength(LIMITS.name, 'errors.tooLong')),
  description: z.string().check(z.maxLength(LIMITS.description, 'errors.tooLong')),
  days: z.array(z.string()).check(z.minLength(1, 'errors.noDays')),
  window: z.object({
    start: z.string().check(z.regex(/^\d\d:\d\d$/, 'errors.badTime')),
    end: z.string().check(z.regex(/^\d\d:\d\d$/, 'errors.badTime')),
  }),
  places: z.array(
    z.object({ name: z.string().check(z.trim(), z.minLength(1, 'errors.required'), z.maxLength(LIMITS.placeName, 'errors.tooLong')) }),
  ),
});

const DaysCalendar = lazy(() => import('../components/DaysCalendar'));

const MAX_BY_KEY: Record<string, number> = { title: LIMITS.title, organizerName: LIMITS.name, description: LIMITS.description };

/**
 * After a failed submit: focus (and so scroll to) the first field with an error, in page order, so a
 * phone shows what to fix instead of nothing happening.
 */
function focusFirstError(form: HTMLFormElement | null) {
  window.requestAnimationFrame(() => {
    const bad = form?.querySelector<HTMLElement>('[aria-invalid="true"], .has-error input, .has-error button, .has-error select, .error');
    if (!bad) return;
    const target = bad.classList.contains('error') ? bad.closest('fieldset, .field') ?? bad : bad;
    target.scrollIntoView?.({ block: 'center' });
    if (bad.classList.contains('error')) {
      (target as HTMLElement).querySelector<HTMLElement>('button, input, select')?.focus({ preventScroll: true });
    } else bad.focus({ preventScroll: true });
  });
}

function toKey(d: Date): string {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

function fromKey(k: string): Date {
  const [y, m, d] = k.split('-').map(Number);
  return new Date(y, m - 1, d);
}

function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h * 60 + m;
}

const ZONES: string[] = (() => {
  try {
    return (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf('timeZone');
  } catch {
    return [];
  }
})();

export default function CreatePage() {
  const { t, i18n } = useTranslation();
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [zone, setZone] = useState(viewerZone);
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [organizerName, setOrganizerName] = useState(getName);
  const [days, setDays] = useState<string[]>(() => nextDays(7, viewerZone()));
  const [start, setStart] = useState('18:00');
  const [end, setEnd] = useState('23:00');
  const [slotMinutes, setSlotMinutes] = useState<SlotMinutes>(60);
  const [places, setPlaces] = useState<PlaceRow[]>([{ key: 1, name: '', where: '' }]);
  const [allowPlaces, setAllowPlaces] = useState(true);
  const [deadline, setDeadline] = useState('');
  const [moreOpen, setMoreOpen] = useState(false);
  const [suggestQ, setSuggestQ] = useState('');
  const suggestions = usePlaceSuggestions(suggestQ);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState('');
  const [busy, setBusy] = useState(false);
  const recent = useMemo(getRecent, []);
  const formRef = useRef<HTMLFormElement>(null);
  const focusPlace = useRef<number | null>(null);
  useEffect(() => {
    if (focusPlace.current === null) return;
    document.querySelector<HTMLInputElement>(`input[name="place-${focusPlace.current}-name"]`)?.focus();
    focusPlace.current = null;
  }, [places.length]);

  const perDay = useMemo(() => {
    let span = minutesOf(end) - minutesOf(start);
    if (span <= 0) span += 1440;
    return Math.floor(span / slotMinutes);
  }, [start, end, slotMinutes]);
  const total = perDay * days.length;
  const today = fromKey(nextDays(1, zone)[0]);

  // An error goes away as soon as its field is edited.
  const clear = (...keys: string[]) =>
    setErrors((e) => {
      if (!keys.some((k) => k in e)) return e;
      const next = { ...e };
      for (const k of keys) delete next[k];
      return next;
    });

  const setPlace = (key: number, patch: Partial<PlaceRow>) =>
    setPlaces((ps) => ps.map((p) => (p.key === key ? { ...p, ...patch } : p)));

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    setFormError('');
    const filled = places.filter((p) => p.name.trim() || p.where.trim());
    const parsed = schema.safeParse({
      title,
      organizerName,
      description,
      days,
      window: { start, end },
      places: filled.map((p) => ({ name: p.name })),
    });
    if (!parsed.success) {
      const errs: Record<string, string> = {};
      for (const issue of parsed.error.issues) {
        const key = issue.path.join('.');
        if (!errs[key]) errs[key] = t(issue.message, { max: MAX_BY_KEY[key] ?? (key.startsWith('places.') ? LIMITS.placeName : LIMITS.name) });
      }
      setErrors(errs);
      focusFirstError(formRef.current);
      return;
    }
    if (total > LIMITS.slots) {
      setErrors({ days: t('create.tooManySlots', { max: LIMITS.slots }) });
      focusFirstError(formRef.current);
      return;
    }
    if (deadline && !(new Date(deadline).getTime() > Date.now())) {
      setErrors({ deadline: t('errors.deadlinePast') });
      setMoreOpen(true);
      focusFirstError(formRef.current);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      const res = await api.createMeetup({
        title: title.trim(),
        description: description.trim() || undefined,
        organizerName: organizerName.trim(),
        timeZone: zone,
        slotMinutes,
        days: [...days].sort(),
        window: { start, end },
        allowParticipantPlaces: allowPlaces,
        ...(deadline ? { deadline: new Date(deadline).toISOString() } : {}),
        places: filled.map((p) => {
          const where = p.where.trim();
          const isLink = /^https?:\/\//i.test(where);
          return {
            name: p.name.trim(),
            ...(where ? (isLink ? { link: where } : { address: where }) : {}),
          };
        }),
      });
      const id = res.meetup.id;
      setTokens(id, {
        adminToken: res.adminToken,
        participantId: res.participantId,
        participantToken: res.participantToken,
      });
      setName(organizerName.trim());
      rememberRecent({ id, title: res.meetup.title, organizer: true });
      qc.setQueryData(['meetup', id], res.meetup);
      navigate(`/m/${id}`, { state: { justCreated: true } });
    } catch (err) {
      const fields = fieldErrors(err);
      // The API numbers places among those sent; map them back to the rows shown.
      const mapped: Record<string, string> = {};
      for (const [k, v] of Object.entries(fields)) {
        const m = /^places\.(\d+)(\.\w+)?$/.exec(k);
        if (m) {
          const row = filled[Number(m[1])];
          const idx = row ? places.indexOf(row) : -1;
          mapped[idx >= 0 ? `places.${idx}.${m[2]?.slice(1) === 'name' || !m[2] ? 'name' : 'where'}` : k] = v;
        } else if (k.startsWith('window')) {
          mapped.window = v;
        } else if (k.startsWith('days') || k === 'slots') {
          mapped.days = v;
        } else mapped[k] = v;
      }
      setErrors(mapped);
      if (mapped.deadline || mapped.timeZone) setMoreOpen(true);
      focusFirstError(formRef.current);
      const shown = (k: string) =>
        ['title', 'organizerName', 'description', 'days', 'window', 'slotMinutes', 'timeZone', 'deadline'].includes(k) ||
        /^places\.\d+\.(name|where)$/.test(k);
      const rest = unplacedErrors(mapped, shown);
      if (rest.length) setFormError(rest.join(' '));
      else if (Object.keys(fields).length === 0) setFormError(errorText(err, t));
    } finally {
      setBusy(false);
    }
  };

  const err = (k: string) => errors[k];
  const described = (k: string) => (errors[k] ? `${k}-error` : undefined);

  return (
    <div className="create">
      <section className="hero">
        <h1>{t('create.title')}</h1>
        <p className="lead">{t('create.lead')}</p>
        <ol className="steps">
          <li>
            <span aria-hidden="true">🗓️</span> {t('create.steps.one')}
          </li>
          <li>
            <span aria-hidden="true">🖌️</span> {t('create.steps.two')}
          </li>
          <li>
            <span aria-hidden="true">🍻</span> {t('create.steps.three')}
          </li>
        </ol>
        <Joke />
      </section>

      <form className="card form" ref={formRef} onSubmit={(e) => void onSubmit(e)} noValidate>
        <Field id="title" label={t('create.what')} error={err('title')}>
          <input
            id="title"
            name="title"
            value={title}
            maxLength={LIMITS.title}
            placeholder={t('create.titlePlaceholder')}
            onChange={(e) => {
              setTitle(e.target.value);
              clear('title');
            }}
            aria-invalid={!!err('title')}
            aria-describedby={described('title')}
            autoComplete="off"
          />
        </Field>
        <Field id="organizerName" label={t('create.yourName')} error={err('organizerName')}>
          <input
            id="organizerName"
            name="organizerName"
            value={organizerName}
            maxLength={LIMITS.name}
            placeholder={t('create.namePlaceholder')}
            onChange={(e) => {
              setOrganizerName(e.target.value);
              clear('organizerName');
            }}
            aria-invalid={!!err('organizerName')}
            aria-describedby={described('organizerName')}
            autoComplete="given-name"
          />
        </Field>
        <Field id="description" label={t('create.description')} error={err('description')}>
          <textarea
            id="description"
            name="description"
            rows={2}
            value={description}
            maxLength={LIMITS.description}
            placeholder={t('create.descriptionPlaceholder')}
            onChange={(e) => {
              setDescription(e.target.value);
              clear('description');
            }}
            aria-invalid={!!err('description')}
            aria-describedby={described('description')}
          />
        </Field>

        <fieldset className={`field days${err('days') ? ' has-error' : ''}`}>
          <legend>{t('create.days')}</legend>
          <div className="day-tools">
            <span className="hint">{t('create.daysHint', { count: days.length })}</span>
            <button type="button" className="link-btn" onClick={() => setDays(nextDays(7, zone))}>
              {t('create.next7')}
            </button>
            <button type="button" className="link-btn" onClick={() => setDays([])}>
              {t('create.clearDays')}
            </button>
          </div>
          <Suspense fallback={<div className="calendar-placeholder" aria-hidden="true" />}>
            <DaysCalendar
              selected={days.map(fromKey)}
              onSelect={(ds) => {
                setDays(ds.map(toKey).sort());
                clear('days');
              }}
              today={today}
              lang={i18n.resolvedLanguage ?? 'en'}
            />
          </Suspense>
          {err('days') && (
            <p className="error" role="alert" id="days-error">
              {err('days')}
            </p>
          )}
        </fieldset>

        <fieldset className={`field${err('window') ? ' has-error' : ''}`}>
          <legend>{t('create.window')}</legend>
          <div className="row">
            <label className="inline">
              <span>{t('create.from')}</span>
              <input type="time" name="windowStart" value={start} step={900} onChange={(e) => {
                  setStart(e.target.value);
                  clear('window');
                }} />
            </label>
            <label className="inline">
              <span>{t('create.to')}</span>
              <input type="time" name="windowEnd" value={end} step={900} onChange={(e) => {
                  setEnd(e.target.value);
                  clear('window');
                }} />
            </label>
          </div>
          {minutesOf(end) <= minutesOf(start) && <p className="hint">{t('create.crossesMidnight')} 🦉</p>}
          {err('window') && (
            <p className="error" role="alert">
              {err('window')}
            </p>
          )}
        </fieldset>

        <fieldset className="field">
          <legend>{t('create.slotLength')}</legend>
          <div className="segmented" role="radiogroup" aria-label={t('create.slotLength')}>
            {([15, 30, 60] as const).map((m) => (
              <label key={m} className={slotMinutes === m ? 'on' : ''}>
                <input
                  type="radio"
                  name="slotMinutes"
                  value={m}
                  checked={slotMinutes === m}
                  onChange={() => setSlotMinutes(m)}
                />
                {m === 60 ? t('create.hour') : t('create.minutes', { count: m })}
              </label>
            ))}
          </div>
          <p className={total > LIMITS.slots ? 'error' : 'hint'}>
            {total > LIMITS.slots
              ? t('create.tooManySlots', { max: LIMITS.slots })
              : t('create.slotsCount', { days: days.length, perDay, total })}
          </p>
        </fieldset>

        <fieldset className="field places-field">
          <legend>{t('create.places')}</legend>
          <p className="hint">{t('create.placesHint')}</p>
          {places.map((p, i) => (
            <div className="place-row" key={p.key}>
              <div className="place-inputs">
                <input
                  aria-label={t('create.placeName', { n: i + 1 })}
                  name={`place-${i}-name`}
                  list="place-suggestions"
                  autoComplete="off"
                  value={p.name}
                  maxLength={LIMITS.placeName}
                  placeholder={`🍺 ${t('create.placeNamePlaceholder')}`}
                  onChange={(e) => {
                    const name = e.target.value;
                    const where = p.where ? undefined : whereOf(suggestions, name);
                    setPlace(p.key, where ? { name, where } : { name });
                    setSuggestQ(name);
                    clear(`places.${i}.name`);
                  }}
                  aria-invalid={!!err(`places.${i}.name`)}
                />
                <input
                  aria-label={t('create.placeWhere')}
                  name={`place-${i}-where`}
                  value={p.where}
                  placeholder={t('create.placeWherePlaceholder')}
                  onChange={(e) => {
                    setPlace(p.key, { where: e.target.value });
                    clear(`places.${i}.where`);
                  }}
                  aria-invalid={!!err(`places.${i}.where`)}
                />
              </div>
              <button
                type="button"
                className="icon-btn"
                aria-label={t('create.removePlace', { n: i + 1 })}
                onClick={() => setPlaces((ps) => ps.filter((x) => x.key !== p.key))}
              >
                ✕
              </button>
              {(err(`places.${i}.name`) || err(`places.${i}.where`)) && (
                <p className="error" role="alert">
                  {err(`places.${i}.name`) || err(`places.${i}.where`)}
                </p>
              )}
            </div>
          ))}
          <SuggestionList id="place-suggestions" items={suggestions} />
          <button
            type="button"
            className="btn ghost small"
            onClick={() => {
              // The new row's name field gets the focus, ready to type.
              focusPlace.current = places.length;
              setPlaces((ps) => [...ps, { key: Math.max(0, ...ps.map((x) => x.key)) + 1, name: '', where: '' }]);
            }}
          >
            + {t('create.addPlace')}
          </button>
        </fieldset>

        <details className="more" open={moreOpen} onToggle={(e) => setMoreOpen(e.currentTarget.open)}>
          <summary>{t('create.more')}</summary>
          <Field id="timeZone" label={t('create.timeZone')} error={err('timeZone')}>
            <select id="timeZone" value={zone} onChange={(e) => setZone(e.target.value)}>
              {(ZONES.includes(zone) ? ZONES : [zone, ...ZONES]).map((z) => (
                <option key={z} value={z}>
                  {z}
                </option>
              ))}
            </select>
          </Field>
          <Field id="deadline" label={t('create.deadline')} error={err('deadline')}>
            <input
              id="deadline"
              type="datetime-local"
              value={deadline}
              onChange={(e) => {
                setDeadline(e.target.value);
                clear('deadline');
              }}
              aria-invalid={!!err('deadline')}
            />
          </Field>
          <label className="check">
            <input type="checkbox" checked={allowPlaces} onChange={(e) => setAllowPlaces(e.target.checked)} />
            {t('create.allowPlaces')}
          </label>
        </details>

        {formError && (
          <p className="error banner-error" role="alert">
            {formError}
          </p>
        )}
        <button type="submit" className="btn primary big" disabled={busy}>
          {busy ? t('create.submitting') : `🍻 ${t('create.submit')}`}
        </button>
      </form>

      {recent.length > 0 && (
        <section className="card recent">
          <h2>{t('create.recent')}</h2>
          <ul>
            {recent.map((r) => (
              <li key={r.id}>
                <Link to={`/m/${r.id}`}>{r.title}</Link>
                {r.organizer && <span className="badge">{t('create.recentOrganizer')}</span>}
              </li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}
