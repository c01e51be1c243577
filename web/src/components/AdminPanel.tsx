import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate } from 'react-router';
import { useDeleteMeetup, useFinalize, usePatchMeetup } from '../api/mutations';
import { LIMITS } from '../api/limits';
import { errorText, fieldErrors } from '../lib/errors';
import { adjacent, bestPlaceIds, bestRanges, bestRun, rankPlaces, rankSlots } from '../lib/tally';
import { formatRange } from '../lib/timegrid';
import { useMeetupData, usePageUi, useSession } from './ctx';

export function AdminPanel() {
  const { t } = useTranslation();
  const { m } = useMeetupData();
  const { tokens } = useSession();
  const navigate = useNavigate();
  const patch = usePatchMeetup(m.id, tokens.adminToken);
  const remove = useDeleteMeetup(m.id, tokens.adminToken);
  const [error, setError] = useState('');
  const busy = patch.isPending;

  const setStatus = (status: 'open' | 'closed') => {
    setError('');
    patch.mutate({ status }, { onError: (err) => setError(errorText(err, t)) });
  };

  const del = () => {
    if (!window.confirm(t('admin.confirmDelete'))) return;
    remove.mutate(undefined, {
      onSuccess: () => navigate('/'),
      onError: (err) => setError(errorText(err, t)),
    });
  };

  return (
    <section className="card admin" aria-labelledby="admin-title">
      <h2 id="admin-title">🧑‍🍳 {t('admin.title')}</h2>
      {m.status !== 'finalized' && <FinalizeForm />}
      <EditDetails />
      <div className="row wrap admin-actions">
        {m.status === 'open' && (
          <button type="button" className="btn ghost" disabled={busy} onClick={() => setStatus('closed')}>
            🔒 {t('admin.close')}
          </button>
        )}
        {m.status !== 'open' && (
          <button type="button" className="btn ghost" disabled={busy} onClick={() => setStatus('open')}>
            🔓 {t('admin.reopen')}
          </button>
        )}
        <button type="button" className="link-btn danger" onClick={del}>
          {t('admin.delete')}
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

function EditDetails() {
  const { t } = useTranslation();
  const { m } = useMeetupData();
  const { tokens } = useSession();
  const patch = usePatchMeetup(m.id, tokens.adminToken);
  const [title, setTitle] = useState(m.title);
  const [description, setDescription] = useState(m.description ?? '');
  const [allow, setAllow] = useState(m.allowParticipantPlaces);
  const toLocalInput = (iso?: string) => {
    if (!iso) return '';
    const d = new Date(iso);
    const pad = (n: number) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  };
  const [deadline, setDeadline] = useState(toLocalInput(m.deadline));
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState(false);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!title.trim()) {
      setErrors({ title: t('errors.required') });
      document.getElementById('edit-title')?.focus();
      return;
    }
    patch.mutate(
      {
        title: title.trim(),
        description: description.trim(),
        allowParticipantPlaces: allow,
        ...(deadline !== toLocalInput(m.deadline)
          ? { deadline: deadline ? new Date(deadline).toISOString() : null }
          : {}),
      },
      {
        onSuccess: () => {
          setErrors({});
          setSaved(true);
          window.setTimeout(() => setSaved(false), 2000);
        },
        onError: (err) => {
          const f = fieldErrors(err);
          setErrors(Object.keys(f).length ? f : { form: errorText(err, t) });
        },
      },
    );
  };

  return (
    <details className="edit">
      <summary>✏️ {t('admin.edit')}</summary>
      <form onSubmit={submit} noValidate>
        <div className={`field${errors.title ? ' has-error' : ''}`}>
          <label htmlFor="edit-title">{t('admin.titleField')}</label>
          <input id="edit-title" value={title} maxLength={LIMITS.title} onChange={(e) => setTitle(e.target.value)} aria-invalid={!!errors.title} />
          {errors.title && <p className="error" role="alert">{errors.title}</p>}
        </div>
        <div className={`field${errors.description ? ' has-error' : ''}`}>
          <label htmlFor="edit-description">{t('admin.description')}</label>
          <textarea id="edit-description" rows={3} maxLength={LIMITS.description} value={description} onChange={(e) => setDescription(e.target.value)} />
          {errors.description && <p className="error" role="alert">{errors.description}</p>}
        </div>
        <div className={`field${errors.deadline ? ' has-error' : ''}`}>
          <label htmlFor="edit-deadline">{t('admin.deadline')}</label>
          <div className="copy-row">
            <input id="edit-deadline" type="datetime-local" value={deadline} onChange={(e) => setDeadline(e.target.value)} />
            {deadline && (
              <button type="button" className="btn small ghost" onClick={() => setDeadline('')}>
                {t('admin.noDeadline')}
              </button>
            )}
          </div>
          {errors.deadline && <p className="error" role="alert">{errors.deadline}</p>}
        </div>
        <label className="check">
          <input type="checkbox" checked={allow} onChange={(e) => setAllow(e.target.checked)} />
          {t('admin.allowPlaces')}
        </label>
        {errors.form && <p className="error" role="alert">{errors.form}</p>}
        <button type="submit" className="btn">
          {saved ? `✓ ${t('admin.saved')}` : t('admin.save')}
        </button>
      </form>
    </details>
  );
}

function FinalizeForm() {
  const { t } = useTranslation();
  const { m, tallies, voters, zone, locale } = useMeetupData();
  const { tokens } = useSession();
  const { finalPick } = usePageUi();
  const finalize = useFinalize(m.id, tokens.adminToken);
  const ranked = useMemo(() => rankSlots(m.slots, tallies), [m.slots, tallies]);
  const ranges = useMemo(() => bestRanges(m.slots, tallies).slice(0, 3), [m.slots, tallies]);
  // Until the organizer picks something, the form follows the current favourites live.
  const autoRun = ranked[0]
    ? bestRun(m.slots, tallies, ranked[0].id)
    : m.slots[0]
      ? { startSlotId: m.slots[0].id, endSlotId: m.slots[0].id }
      : null;
  const bestPlace = useMemo(
    () => rankPlaces(m.places, voters).find((p) => bestPlaceIds(voters).has(p.id)),
    [m.places, voters],
  );
  const [pickedRun, setPickedRun] = useState<{ startSlotId: string; endSlotId: string } | null>(null);
  const [pickedPlace, setPickedPlace] = useState<string | null>(null);
  const startId = pickedRun?.startSlotId ?? autoRun?.startSlotId ?? '';
  const endId = pickedRun?.endSlotId ?? autoRun?.endSlotId ?? '';
  const placeId = pickedPlace ?? bestPlace?.id ?? '';
  const [note, setNote] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});

  useEffect(() => {
    if (!finalPick) return;
    setPickedRun(bestRun(m.slots, tallies, finalPick.split('@')[0]));
    document.getElementById('finalize')?.scrollIntoView?.({ behavior: 'smooth', block: 'center' });
    document.getElementById('final-start')?.focus({ preventScroll: true });
  }, [finalPick]);

  const startIdx = m.slots.findIndex((s) => s.id === startId);
  // The end can be any slot from the start on while the slots stay back to back.
  const endOptions = useMemo(() => {
    if (startIdx < 0) return [];
    const out = [m.slots[startIdx]];
    for (let i = startIdx + 1; i < m.slots.length && adjacent(m.slots[i - 1], m.slots[i]); i++) out.push(m.slots[i]);
    return out;
  }, [m.slots, startIdx]);
  const label = (id: string) => {
    const s = m.slots.find((x) => x.id === id);
    if (!s) return '';
    const sc = tallies.get(id)?.score ?? 0;
    return `${formatRange(s.start, s.end, zone, locale)}${sc ? ` · ${t('admin.score', { score: sc })}` : ''}`;
  };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!startId) return;
    finalize.mutate(
      {
        startSlotId: startId,
        endSlotId: endOptions.some((s) => s.id === endId) ? endId : startId,
        ...(placeId ? { placeId } : {}),
        ...(note.trim() ? { note: note.trim() } : {}),
      },
      {
        onSuccess: () => {
          window.scrollTo({ top: 0, behavior: 'smooth' });
          document.getElementById('final-title')?.focus({ preventScroll: true });
        },
        onError: (err) => {
          const f = fieldErrors(err);
          setErrors(Object.keys(f).length ? f : { form: errorText(err, t) });
        },
      },
    );
  };
  const rangeOn = (r: { startSlotId: string; endSlotId: string }) => r.startSlotId === startId && r.endSlotId === endId;

  return (
    <form id="finalize" className="finalize" onSubmit={submit} noValidate>
      <h3>🎯 {t('admin.finalize')}</h3>
      <p className="hint">{t('admin.finalizeLead')}</p>
      {ranges.length > 0 && (
        <div className="quick-ranges" role="group" aria-label={t('admin.bestRanges')}>
          <span className="filter-label">{t('admin.bestRanges')}</span>
          {ranges.map((r) => (
            <button
              key={r.startSlotId}
              type="button"
              className={`chip${rangeOn(r) ? ' on' : ''}`}
              aria-pressed={rangeOn(r)}
              onClick={() => setPickedRun({ startSlotId: r.startSlotId, endSlotId: r.endSlotId })}
            >
              {formatRange(r.start, r.end, zone, locale)} · {t('when.of', { n: r.yes.length + r.maybe.length, total: m.participants.length })}
            </button>
          ))}
        </div>
      )}
      <div className={`field${errors.startSlotId ? ' has-error' : ''}`}>
        <label htmlFor="final-start">{t('admin.from')}</label>
        <select
          id="final-start"
          value={startId}
          onChange={(e) => setPickedRun({ startSlotId: e.target.value, endSlotId: e.target.value })}
        >
          {m.slots.map((s) => (
            <option key={s.id} value={s.id}>
              {label(s.id)}
            </option>
          ))}
        </select>
        {errors.startSlotId && <p className="error" role="alert">{errors.startSlotId}</p>}
      </div>
      <div className={`field${errors.endSlotId ? ' has-error' : ''}`}>
        <label htmlFor="final-end">{t('admin.until')}</label>
        <select id="final-end" value={endId} onChange={(e) => setPickedRun({ startSlotId: startId, endSlotId: e.target.value })}>
          {endOptions.map((s) => (
            <option key={s.id} value={s.id}>
              {/* The whole evening as it would be decided, not the last slot alone. */}
              {formatRange(endOptions[0].start, s.end, zone, locale)}
            </option>
          ))}
        </select>
        {errors.endSlotId && <p className="error" role="alert">{errors.endSlotId}</p>}
      </div>
      <div className={`field${errors.placeId ? ' has-error' : ''}`}>
        <label htmlFor="final-place">{t('admin.place')}</label>
        <select id="final-place" value={placeId} onChange={(e) => setPickedPlace(e.target.value)}>
          <option value="">{t('admin.noPlace')}</option>
          {m.places.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name} ({t('where.votes', { count: voters.get(p.id)?.length ?? 0 })})
            </option>
          ))}
        </select>
        {errors.placeId && <p className="error" role="alert">{errors.placeId}</p>}
      </div>
      <div className={`field${errors.note ? ' has-error' : ''}`}>
        <label htmlFor="final-note">{t('admin.note')}</label>
        <input id="final-note" value={note} maxLength={LIMITS.note} placeholder={t('admin.notePlaceholder')} onChange={(e) => setNote(e.target.value)} />
        {errors.note && <p className="error" role="alert">{errors.note}</p>}
      </div>
      {errors.form && <p className="error" role="alert">{errors.form}</p>}
      <button type="submit" className="btn primary" disabled={finalize.isPending || !startId}>
        {t('admin.finalizeSubmit')}
      </button>
    </form>
  );
}
