import { useEffect, useId, useRef, useState, type FormEvent, type RefObject } from 'react';
import { useTranslation } from 'react-i18next';
import { useMutation } from '@tanstack/react-query';
import { api, ApiError } from '../api/client';
import { LIMITS } from '../api/limits';
import { errorText, fieldErrors } from '../lib/errors';
import { getName, rememberRecent, setName, setTokens } from '../lib/storage';
import { useMeetupData, usePageUi, useSession } from './ctx';

/** Sets, changes or removes the PIN that gets my name back on another device. */
export function PinForm() {
  const { t } = useTranslation();
  const { m } = useMeetupData();
  const { me, tokens, setTokens: setSessionTokens } = useSession();
  const id = useId();
  const [pin, setPin] = useState('');
  const [error, setError] = useState('');
  const [done, setDone] = useState<'' | 'set' | 'removed'>('');
  const input = useRef<HTMLInputElement>(null);
  const token = tokens.participantToken ?? '';
  // The organizer's PIN also keeps the admin link, so it brings the organizer controls back.
  const adminToken = me?.isOrganizer ? tokens.adminToken : undefined;
  const change = useMutation({
    mutationFn: (secret: string | null) =>
      secret === null
        ? api.removeSecret(m.id, me?.id ?? '', token)
        : api.setSecret(m.id, me?.id ?? '', secret, token, adminToken),
    onSuccess: (_, secret) => {
      setSessionTokens(setTokens(m.id, { hasPin: secret === null ? undefined : true }));
      setDone(secret === null ? 'removed' : 'set');
      setPin('');
      setError('');
    },
    onError: (err) => {
      setError(fieldErrors(err).secret ?? errorText(err, t));
      input.current?.focus();
    },
  });
  if (!me || !token) return null;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setDone('');
    if ([...pin].length < LIMITS.minSecret) {
      setError(t('pin.tooShort', { min: LIMITS.minSecret }));
      input.current?.focus();
      return;
    }
    change.mutate(pin);
  };

  return (
    <form className="pin-form" data-testid="pin-form" onSubmit={submit} noValidate>
      <p className="small">{adminToken ? t('pin.organizerLead') : t('pin.lead')}</p>
      <SecretField
        id={id}
        inputRef={input}
        label={t('pin.label', { min: LIMITS.minSecret, max: LIMITS.secret })}
        name="new-pin"
        autoComplete="new-password"
        value={pin}
        onChange={setPin}
        error={error}
        submit={`🔐 ${tokens.hasPin ? t('pin.change') : t('pin.set')}`}
        submitClass="btn small"
        pending={change.isPending}
      />
      {done && (
        <p className="ok small" role="status" data-testid="pin-done">
          {done === 'set' ? t('pin.done') : t('pin.removed')}
        </p>
      )}
      {tokens.hasPin && done !== 'set' && (
        <button type="button" className="link-btn small" onClick={() => change.mutate(null)}>
          {t('pin.remove')}
        </button>
      )}
    </form>
  );
}

/**
 * "That's you?": the name (given, or typed here) plus its PIN bring back the same participant,
 * with the token the first device holds.
 */
export function ReclaimForm({ name }: { name?: string }) {
  const { t } = useTranslation();
  const { m } = useMeetupData();
  const session = useSession();
  const { notify } = usePageUi();
  const id = useId();
  const [typedName, setTypedName] = useState(getName);
  const [pin, setPin] = useState('');
  const [error, setError] = useState('');
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const who = (name ?? typedName).trim();
  const reclaim = useMutation({
    mutationFn: () => api.reclaim(m.id, { name: who, secret: pin }),
    onSuccess: (res) => {
      const next = setTokens(m.id, {
        participantId: res.participant.id,
        participantToken: res.token,
        hasPin: true,
        ...(res.adminToken ? { adminToken: res.adminToken } : {}),
      });
      setName(res.participant.name);
      rememberRecent({ id: m.id, title: m.title, organizer: !!next.adminToken });
      session.setTokens(next);
      notify(t('pin.back', { name: res.participant.name }));
    },
    onError: (err) => {
      if (err instanceof ApiError && err.status === 401) setError(t('pin.wrong'));
      else if (err instanceof ApiError && err.status === 429)
        setError(t('pin.tooMany', { minutes: Math.max(1, Math.ceil((err.retryAfter ?? 60) / 60)) }));
      else {
        const f = fieldErrors(err);
        setError(f.secret ?? f.name ?? errorText(err, t));
      }
      setPin('');
      input.current?.focus();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!who) {
      setError(t('errors.required'));
      return;
    }
    if ([...pin].length < LIMITS.minSecret) {
      setError(t('pin.tooShort', { min: LIMITS.minSecret }));
      input.current?.focus();
      return;
    }
    reclaim.mutate();
  };
  return (
    <form className="reclaim-form" data-testid="reclaim" onSubmit={submit} noValidate>
      <h3>🔐 {t('pin.reclaimTitle')}</h3>
      {name === undefined && (
        <div className="field">
          <label htmlFor={`${id}-name`}>{t('join.name')}</label>
          <input
            id={`${id}-name`}
            value={typedName}
            maxLength={LIMITS.name}
            autoComplete="username"
            onChange={(e) => setTypedName(e.target.value)}
          />
        </div>
      )}
      <SecretField
        id={id}
        inputRef={input}
        label={t('pin.reclaimLabel')}
        name="pin"
        autoComplete="current-password"
        value={pin}
        onChange={setPin}
        error={error}
        errorTestId="reclaim-error"
        submit={t('pin.reclaimSubmit')}
        submitClass="btn primary small"
        pending={reclaim.isPending}
      />
    </form>
  );
}

/** The password field both forms share: label, masked input, submit beside it, the error below. */
function SecretField(props: {
  id: string;
  inputRef: RefObject<HTMLInputElement | null>;
  label: string;
  name: string;
  autoComplete: 'new-password' | 'current-password';
  value: string;
  onChange: (value: string) => void;
  error: string;
  errorTestId?: string;
  submit: string;
  submitClass: string;
  pending: boolean;
}) {
  const { id, error } = props;
  return (
    <div className={`field${error ? ' has-error' : ''}`}>
      <label htmlFor={id}>{props.label}</label>
      <div className="copy-row">
        <input
          id={id}
          ref={props.inputRef}
          type="password"
          name={props.name}
          autoComplete={props.autoComplete}
          value={props.value}
          maxLength={LIMITS.secret}
          onChange={(e) => props.onChange(e.target.value)}
          aria-invalid={!!error}
          aria-describedby={error ? `${id}-error` : undefined}
        />
        <button type="submit" className={props.submitClass} disabled={props.pending}>
          {props.submit}
        </button>
      </div>
      {error && (
        <p className="error" id={`${id}-error`} role="alert" data-testid={props.errorTestId}>
          {error}
        </p>
      )}
    </div>
  );
}
