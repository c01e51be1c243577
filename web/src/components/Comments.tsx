import { useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { useAddComment, useRemoveComment } from '../api/mutations';
import { LIMITS } from '../api/limits';
import { errorText, fieldErrors } from '../lib/errors';
import { useMeetupData, usePageUi, useSession } from './ctx';

export function Comments() {
  const { t, i18n } = useTranslation();
  const { m, open } = useMeetupData();
  const { me, token, tokens, isAdmin } = useSession();
  const { notify } = usePageUi();
  const add = useAddComment(m.id, token);
  const removeC = useRemoveComment(m.id, tokens.adminToken ?? token);
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const time = new Intl.DateTimeFormat(i18n.resolvedLanguage, {
    weekday: 'short',
    hour: 'numeric',
    minute: '2-digit',
  });

  const send = (e: FormEvent) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) {
      setError(t('errors.required'));
      return;
    }
    if (!token) return;
    // A message that did not reach the server stays in the box with the reason, to send again.
    add.mutate(body, {
      onSuccess: () => {
        setText('');
        setError('');
      },
      onError: (err) => setError(fieldErrors(err).text ?? errorText(err, t)),
    });
  };

  const remove = (id: string) => {
    if (!(tokens.adminToken ?? token)) return;
    removeC.mutate(id, { onError: (err) => notify(errorText(err, t)) });
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
                  <strong className="comment-author">{x.author}</strong>
                  <time dateTime={x.createdAt}>{time.format(new Date(x.createdAt))}</time>
                  {(mine || isAdmin) && (
                    <button type="button" className="link-btn danger small" onClick={() => remove(x.id)}>
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
      {token ? (
        <form className="comment-form" onSubmit={send} noValidate>
          <label className="sr-only" htmlFor="comment-text">
            {t('comments.label')}
          </label>
          <textarea
            id="comment-text"
            rows={2}
            maxLength={LIMITS.comment}
            value={text}
            placeholder={t('comments.placeholder')}
            onChange={(e) => setText(e.target.value)}
            aria-invalid={!!error}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send(e);
            }}
          />
          <button type="submit" className="btn" disabled={add.isPending}>
            {t('comments.send')}
          </button>
          {error && (
            <p className="error" role="alert">
              {error}
            </p>
          )}
        </form>
      ) : (
        <p className="muted small">{open ? t('comments.joinFirst') : t('comments.readOnly')}</p>
      )}
    </section>
  );
}
