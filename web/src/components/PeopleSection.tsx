import { useTranslation } from 'react-i18next';
import { api } from '../api/client';
import { errorText } from '../lib/errors';
import { useMeetupCtx } from './ctx';

export function PeopleSection() {
  const { t } = useTranslation();
  const c = useMeetupCtx();
  const { m, me } = c;

  const remove = async (id: string, name: string) => {
    if (!c.tokens.adminToken || !window.confirm(t('people.confirmRemove', { name }))) return;
    c.update((mm) => ({ ...mm, participants: mm.participants.filter((p) => p.id !== id) }));
    try {
      await api.removeParticipant(m.id, id, c.tokens.adminToken);
    } catch (err) {
      c.notify(errorText(err, t));
      c.refetch();
    }
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
              <span className="avatar" aria-hidden="true">
                {p.name.slice(0, 1).toUpperCase()}
              </span>
              <span className="person">
                <strong>{p.name}</strong>
                {p.isOrganizer && <span className="badge">{t('people.organizer')}</span>}
                {me?.id === p.id && <span className="badge you">{t('people.you')}</span>}
                <span className="muted small">
                  {t('people.answered', { count: Object.keys(p.availability).length })}
                </span>
              </span>
              {c.isAdmin && !p.isOrganizer && (
                <button type="button" className="link-btn danger small" onClick={() => void remove(p.id, p.name)}>
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
