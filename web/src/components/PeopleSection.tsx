import { useTranslation } from 'react-i18next';
import { useRemoveParticipant } from '../api/mutations';
import { errorText } from '../lib/errors';
import { useMeetupData, usePageUi, useSession } from './ctx';
import { initials, nameHue } from './Grids';
import type { CSSProperties } from 'react';

export function PeopleSection() {
  const { t } = useTranslation();
  const { m } = useMeetupData();
  const { me, isAdmin, tokens } = useSession();
  const { notify } = usePageUi();
  const removeP = useRemoveParticipant(m.id, tokens.adminToken);

  const remove = (id: string, name: string) => {
    if (!tokens.adminToken || !window.confirm(t('people.confirmRemove', { name }))) return;
    removeP.mutate(id, { onError: (err) => notify(errorText(err, t)) });
  };

  return (
    <section className="card people" aria-labelledby="people-title">
      <h2 id="people-title">🙋 {t('people.title')}</h2>
      {m.participants.length === 0 ? (
        <p className="muted">{t('people.empty')}</p>
      ) : (
        <ul className="people-list">
          {m.participants.map((p) => (
            <li key={p.id}>
              <span className="avatar" aria-hidden="true" style={{ '--hue': nameHue(p.name) } as CSSProperties}>
                {initials(p.name)}
              </span>
              <span className="person">
                <strong className="person-name">{p.name}</strong>
                {p.isOrganizer && <span className="badge">{t('people.organizer')}</span>}
                {me?.id === p.id && <span className="badge you">{t('people.you')}</span>}
                <span className="muted small">
                  {t('people.answered', { count: Object.keys(p.availability).length })}
                </span>
              </span>
              {isAdmin && !p.isOrganizer && (
                <button type="button" className="link-btn danger small" onClick={() => remove(p.id, p.name)}>
                  {t('people.remove')}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
