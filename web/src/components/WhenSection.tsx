import { useEffect, useMemo, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { AvailabilityMap, Brush } from '../lib/selection';
import { bestSlotIds, rankSlots, slotsWhereAllCan } from '../lib/tally';
import { formatRange } from '../lib/timegrid';
import { useMeetupCtx } from './ctx';
import { HeatGrid, PaintGrid } from './Grids';
import { Joke } from './BeerLoader';

export function WhenSection() {
  const { t } = useTranslation();
  const c = useMeetupCtx();
  const { m, me, grid, tallies, zone, locale, open } = c;
  const mine = me?.availability ?? {};
  const [view, setView] = useState<'mine' | 'everyone'>(() =>
    me && open && Object.keys(me.availability).length === 0 ? 'mine' : 'everyone',
  );
  // Right after joining, go straight to painting.
  const hadMe = useRef(!!me);
  useEffect(() => {
    if (me && !hadMe.current && open) setView('mine');
    hadMe.current = !!me;
  }, [me, open]);
  const [brush, setBrush] = useState<Brush>('yes');
  const [saving, setSaving] = useState<'idle' | 'saving' | 'saved'>('idle');
  const [filterOn, setFilterOn] = useState(false);
  const [filterNames, setFilterNames] = useState<string[]>([]);
  const [countMaybe, setCountMaybe] = useState(true);
  const [selected, setSelected] = useState<string | null>(null);

  const best = useMemo(() => bestSlotIds(tallies), [tallies]);
  const ranked = useMemo(() => rankSlots(m.slots, tallies), [m.slots, tallies]);
  const fits = useMemo(
    () => (filterOn ? slotsWhereAllCan(tallies, m.participants, filterNames, countMaybe) : null),
    [filterOn, filterNames, countMaybe, tallies, m.participants],
  );
  const slotById = useMemo(() => new Map(m.slots.map((s) => [s.id, s])), [m.slots]);
  const shownSlot = selected ?? ranked[0]?.id ?? null;

  const paint = async (next: AvailabilityMap) => {
    setSaving('saving');
    const ok = await c.patchMe({ availability: next });
    setSaving(ok ? 'saved' : 'idle');
  };

  const toggleName = (name: string) => {
    setFilterOn(true);
    setFilterNames((ns) => (ns.includes(name) ? ns.filter((n) => n !== name) : [...ns, name]));
  };

  const brushes: { b: Brush; label: string; icon: string }[] = [
    { b: 'yes', label: t('when.yes'), icon: '🍺' },
    { b: 'maybe', label: t('when.maybe'), icon: '🤔' },
    { b: 'erase', label: t('when.erase'), icon: '🧽' },
  ];

  const detail = shownSlot ? tallies.get(shownSlot) : undefined;
  const detailSlot = shownSlot ? slotById.get(shownSlot) : undefined;
  const absent = detail
    ? m.participants.map((p) => p.name).filter((n) => !detail.yes.includes(n) && !detail.maybe.includes(n))
    : [];

  if (m.slots.length === 0) return <p className="muted">{t('when.noSlots')}</p>;

  return (
    <section className="card when" aria-labelledby="when-title">
      <div className="section-head">
        <h2 id="when-title">🕖 {t('when.title')}</h2>
        <div className="segmented tabs" role="tablist" aria-label={t('when.title')}>
          <button type="button" role="tab" aria-selected={view === 'mine'} className={view === 'mine' ? 'on' : ''} onClick={() => setView('mine')}>
            {t('when.mine')}
          </button>
          <button type="button" role="tab" aria-selected={view === 'everyone'} className={view === 'everyone' ? 'on' : ''} onClick={() => setView('everyone')}>
            {t('when.everyone')}
          </button>
        </div>
      </div>

      <div className={`when-panes show-${view}`}>
        <div className="pane pane-mine" role="tabpanel" aria-label={t('when.mine')}>
          <h3 className="pane-title">{t('when.mine')}</h3>
          {me ? (
            <>
              <div className="brushes" role="radiogroup" aria-label={t('when.brush')}>
                {brushes.map((x) => (
                  <button
                    key={x.b}
                    type="button"
                    role="radio"
                    aria-checked={brush === x.b}
                    className={`brush brush-${x.b}${brush === x.b ? ' on' : ''}`}
                    onClick={() => setBrush(x.b)}
                    disabled={!open}
                  >
                    <span aria-hidden="true">{x.icon}</span> {x.label}
                  </button>
                ))}
                <span className="save-state" aria-live="polite">
                  {saving === 'saving' ? t('when.saving') : saving === 'saved' ? `✓ ${t('when.saved')}` : ''}
                </span>
              </div>
              <p className="hint">{t('when.paintHint')}</p>
              <PaintGrid grid={grid} value={mine} brush={brush} disabled={!open} locale={locale} onChange={(n) => void paint(n)} />
            </>
          ) : (
            <p className="muted join-first">{t('when.joinFirst')}</p>
          )}
        </div>

        <div className="pane pane-everyone" role="tabpanel" aria-label={t('when.everyone')}>
          <h3 className="pane-title">{t('when.everyone')}</h3>
          {m.participants.length > 0 && (
            <div className="filter" role="group" aria-label={t('when.filter')}>
              <span className="filter-label">{t('when.filter')}</span>
              <button
                type="button"
                className={`chip${filterOn && filterNames.length === 0 ? ' on' : ''}`}
                aria-pressed={filterOn && filterNames.length === 0}
                onClick={() => {
                  const on = !(filterOn && filterNames.length === 0);
                  setFilterOn(on);
                  setFilterNames([]);
                }}
              >
                {t('when.filterEveryone')}
              </button>
              {m.participants.map((p) => (
                <button
                  key={p.id}
                  type="button"
                  className={`chip${filterNames.includes(p.name) ? ' on' : ''}`}
                  aria-pressed={filterNames.includes(p.name)}
                  onClick={() => toggleName(p.name)}
                >
                  {p.name}
                </button>
              ))}
              {filterOn && (
                <label className="check small">
                  <input type="checkbox" checked={countMaybe} onChange={(e) => setCountMaybe(e.target.checked)} />
                  {t('when.countMaybe')}
                </label>
              )}
              {fits && (
                <p className="filter-result" aria-live="polite">
                  {fits.size > 0 ? t('when.filterCount', { count: fits.size }) : t('when.filterNone')}
                </p>
              )}
            </div>
          )}
          <div className="legend" aria-hidden="true">
            <span className="lg lg-yes" /> {t('when.legendYes')}
            <span className="lg lg-maybe" /> {t('when.legendMaybe')}
            <span className="lg lg-best" /> {t('when.legendBest')}
          </div>
          <div className="heat-layout">
            <HeatGrid
              grid={grid}
              tallies={tallies}
              total={m.participants.length}
              best={best}
              fits={fits}
              selected={shownSlot}
              locale={locale}
              onSelect={setSelected}
            />
            <aside className="who" aria-live="polite" aria-label={t('when.who')}>
              {detail && detailSlot ? (
                <>
                  <h4>
                    {formatRange(detailSlot.start, detailSlot.end, zone, locale)}
                    {best.has(detailSlot.id) && <span className="badge gold">★ {t('when.legendBest')}</span>}
                  </h4>
                  <WhoList icon="🍺" label={t('when.yesList')} names={detail.yes} />
                  {detail.maybe.length > 0 && <WhoList icon="🤔" label={t('when.maybeList')} names={detail.maybe} />}
                  {absent.length > 0 && <WhoList icon="💤" label={t('when.noAnswer')} names={absent} />}
                  {c.isAdmin && open && (
                    <button type="button" className="btn small" onClick={() => c.pickForFinal(detailSlot.id)}>
                      {t('when.useForFinal')}
                    </button>
                  )}
                </>
              ) : (
                <p className="muted">{t('when.pickCell')}</p>
              )}
            </aside>
          </div>
        </div>
      </div>

      <div className="best-times">
        <h3>🏆 {t('when.best')}</h3>
        {ranked.length === 0 ? (
          <>
            <p className="muted">{t('when.bestEmpty')}</p>
            <Joke />
          </>
        ) : (
          <ol>
            {ranked.slice(0, 3).map((s) => {
              const tl = tallies.get(s.id)!;
              return (
                <li key={s.id} className={best.has(s.id) ? 'top' : ''}>
                  <button type="button" className="best-btn" onClick={() => { setSelected(s.id); setView('everyone'); }}>
                    <span className="when-text">{formatRange(s.start, s.end, zone, locale)}</span>
                    <span className="score">
                      {t('when.of', { n: tl.yes.length + tl.maybe.length, total: m.participants.length })}
                    </span>
                    <span className="names-line">
                      {[...tl.yes, ...tl.maybe.map((n) => `${n} (${t('when.legendMaybe')})`)].join(', ')}
                    </span>
                  </button>
                </li>
              );
            })}
          </ol>
        )}
      </div>
    </section>
  );
}

function WhoList({ icon, label, names }: { icon: string; label: string; names: string[] }) {
  const { t } = useTranslation();
  return (
    <div className="who-list">
      <span className="who-label">
        <span aria-hidden="true">{icon}</span> {label} ({names.length})
      </span>
      <span className="who-names">
        {names.length ? names.map((n) => <span key={n} className="name-chip">{n}</span>) : <em>{t('when.nobody')}</em>}
      </span>
    </div>
  );
}

