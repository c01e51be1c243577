import { useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { api } from '../api/client';
import { errorText, fieldErrors } from '../lib/errors';
import { useMeetupCtx } from './ctx';

export function Comments() {
  const { t, i18n } = useTranslation();
  const c = useMeetupCtx();
  const { m, me } = c;
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const time = new Intl.DateTimeFormat(i18n.resolvedLanguage, {
    weekday: 'short',
    hour: 'numeric',
    minute: '2-digit',
  });

  const send = async (e: FormEvent) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) {
      setError(t('errors.required'));
      return;
    }
    if (!c.token) return;
    setBusy(true);
    try {
      const comment = await api.addComment(m.id, body, c.token);
      c.update((mm) => (mm.comments.some((x) => x.id === comment.id) ? mm : { ...mm, comments: [...mm.comments, comment] }));
      setText('');
      setError('');
    } catch (err) {
      setError(fieldErrors(err).text ?? errorText(err, t));
    } finally {
      setBusy(false);
    }
  };

  const remove = async (id: string) => {
    const token = c.tokens.adminToken ?? c.token;
    if (!token) return;
    c.update((mm) => ({ ...mm, comments: mm.comments.filter((x) => x.id !== id) }));
    try {
      await api.removeComment(m.id, id, token);
    } catch (err) {
      c.notify(errorText(err, t));
      c.refetch();
    }
  };

  return (
    <section className="card comments" aria-labelledby="comments-title">
      <h2 id="comments-title">💬 {t('comments.title')}</h2>
      {m.comments.length === 0 ? (
        <p className="muted">{t('comments.empty')}</p>
      ) : (
        <ul className="comment-list">
          {m.comments.map((x) => {
            const mine = !!me && (x.participantId === me.id || (!x.participantId && x.author === me.name));
            return (
              <li key={x.id} className={mine ? 'mine' : ''}>
                <div className="comment-meta">
                  <strong>{x.author}</strong>
                  <time dateTime={x.createdAt}>{time.format(new Date(x.createdAt))}</time>
                  {(mine || c.isAdmin) && (
                    <button type="button" className="link-btn danger small" onClick={() => void remove(x.id)}>
                      {t('comments.remove')}
                    </button>
                  )}
                </div>
                <p className="comment-text">{x.text}</p>
              </li>
            );
          })}
        </ul>
      )}
      {c.token ? (
        <form className="comment-form" onSubmit={(e) => void send(e)} noValidate>
          <label className="sr-only" htmlFor="comment-text">
            {t('comments.label')}
          </label>
          <textarea
            id="comment-text"
            rows={2}
            maxLength={1000}
            value={text}
            placeholder={t('comments.placeholder')}
            onChange={(e) => setText(e.target.value)}
            aria-invalid={!!error}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void send(e);
            }}
          />
          <button type="submit" className="btn" disabled={busy}>
            {t('comments.send')}
          </button>
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
        </form>
      ) : (
        <p className="muted small">{t('comments.joinFirst')}</p>
      )}
    </section>
  );
}
