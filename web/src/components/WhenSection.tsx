import { useEffect, useMemo, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { AvailabilityMap, Brush } from '../lib/selection';
import { bestRanges, bestSlotIds, slotsWhereAllCan } from '../lib/tally';
import { formatRange } from '../lib/timegrid';
import { useMeetupData, useMySaves, usePageUi, useSession } from './ctx';
import { HeatGrid, PaintGrid } from './Grids';
import { Joke } from './BeerLoader';

export function WhenSection() {
  const { t } = useTranslation();
  const { m, grid, tallies, zone, locale, open } = useMeetupData();
  const { me, isAdmin } = useSession();
  const saves = useMySaves();
  const ui = usePageUi();
  const mine = me?.availability ?? {};
  // Paint first when there is something to paint and nobody else to look at yet; the organizer
  // (and anyone after answers close) starts on everyone's grid once friends have answered.
  const [view, setView] = useState<'mine' | 'everyone'>(() => {
    if (!me || !open) return 'everyone';
    if (isAdmin) return m.participants.length > 1 ? 'everyone' : 'mine';
    return Object.keys(me.availability).length === 0 ? 'mine' : 'everyone';
  });
  // Right after joining, go straight to painting.
  const hadMe = useRef(!!me);
  useEffect(() => {
    if (me && !hadMe.current && open) setView('mine');
    hadMe.current = !!me;
  }, [me, open]);
  useEffect(() => {
    if (!open) setView('everyone');
  }, [open]);
  const [brush, setBrush] = useState<Brush>('yes');
  const [filterOn, setFilterOn] = useState(false);
  const [filterNames, setFilterNames] = useState<string[]>([]);
  const [countMaybe, setCountMaybe] = useState(true);
  const [selected, setSelected] = useState<string | null>(null);

  const best = useMemo(() => bestSlotIds(tallies), [tallies]);
  const ranges = useMemo(() => bestRanges(m.slots, tallies), [m.slots, tallies]);
  const fits = useMemo(
    () => (filterOn ? slotsWhereAllCan(tallies, m.participants, filterNames, countMaybe) : null),
    [filterOn, filterNames, countMaybe, tallies, m.participants],
  );
  const slotById = useMemo(() => new Map(m.slots.map((s) => [s.id, s])), [m.slots]);
  const shownSlot = selected ?? ranges[0]?.startSlotId ?? null;

  const paint = (next: AvailabilityMap) => saves.save({ availability: next });

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
  const saveText: Record<typeof saves.state, string> = {
    idle: '',
    saving: t('when.saving'),
    saved: `✓ ${t('when.saved')}`,
    recovered: `✓ ${t('when.saved')}`,
    offline: `⚠️ ${t('when.notSaved')}`,
    failed: t('when.saveFailed'),
  };

  if (m.slots.length === 0) return <p className="muted">{t('when.noSlots')}</p>;

  return (
    <section className="card when" aria-labelledby="when-title">
      <div className="section-head">
        <h2 id="when-title" tabIndex={-1}>🕖 {t('when.title')}</h2>
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
              {open ? (
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
                      >
                        <span aria-hidden="true">{x.icon}</span> {x.label}
                      </button>
                    ))}
                    <span className={`save-state save-${saves.state}`} aria-live="polite" data-testid="save-state">
                      {saveText[saves.state]}
                    </span>
                  </div>
                  <p className="hint">{t('when.paintHint')}</p>
                </>
              ) : (
                <p className="hint frozen">🔒 {t('when.frozen')}</p>
              )}
              <PaintGrid grid={grid} value={mine} brush={brush} disabled={!open} locale={locale} onChange={paint} />
            </>
          ) : (
            <p className="muted join-first">{open ? t('when.joinFirst') : t('when.joinClosed')}</p>
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
                  title={p.name}
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
            <aside className="who" aria-live="polite" aria-label={t('when.who')} id="who-panel">
              {detail && detailSlot ? (
                <>
                  <h4>
                    {formatRange(detailSlot.start, detailSlot.end, zone, locale)}
                    {best.has(detailSlot.id) && <span className="badge gold">★ {t('when.legendBest')}</span>}
                  </h4>
                  <WhoList icon="🍺" label={t('when.yesList')} names={detail.yes} />
                  {detail.maybe.length > 0 && <WhoList icon="🤔" label={t('when.maybeList')} names={detail.maybe} />}
                  {absent.length > 0 && <WhoList icon="💤" label={t('when.noAnswer')} names={absent} />}
                  {isAdmin && open && (
                    <button type="button" className="btn small" onClick={() => ui.pickForFinal(detailSlot.id)}>
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
        {ranges.length === 0 ? (
          <>
            <p className="muted">{t('when.bestEmpty')}</p>
            <Joke />
          </>
        ) : (
          <ol>
            {ranges.slice(0, 3).map((r) => (
              <li key={r.startSlotId} className={r.score === ranges[0].score ? 'top' : ''} data-range={r.slotIds.length}>
                <button
                  type="button"
                  className="best-btn"
                  onClick={() => {
                    setSelected(r.startSlotId);
                    setView('everyone');
                  }}
                >
                  <span className="when-text">{formatRange(r.start, r.end, zone, locale)}</span>
                  <span className="score">
                    {t('when.of', { n: r.yes.length + r.maybe.length, total: m.participants.length })}
                  </span>
                  <span className="names-line">
                    {[...r.yes, ...r.maybe.map((n) => `${n} (${t('when.legendMaybe')})`)].join(', ')}
                  </span>
                </button>
              </li>
            ))}
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
        {names.length ? names.map((n) => <span key={n} className="name-chip" title={n}>{n}</span>) : <em>{t('when.nobody')}</em>}
      </span>
    </div>
  );
}
