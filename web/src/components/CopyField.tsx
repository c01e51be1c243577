import { useId, useState } from 'react';
import { useTranslation } from 'react-i18next';

export function CopyField({ label, value, secret }: { label: string; value: string; secret?: boolean }) {
  const { t } = useTranslation();
  const id = useId();
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      const el = document.getElementById(id) as HTMLInputElement | null;
      el?.select();
      document.execCommand?.('copy');
    }
    setCopied(true);
    window.setTimeout(() => setCopied(false), 1800);
  };
  return (
    <div className={`copy-field${secret ? ' secret' : ''}`}>
      <label htmlFor={id}>{label}</label>
      <div className="copy-row">
        <input id={id} readOnly value={value} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" className="btn small" onClick={() => void copy()}>
          {copied ? t('share.copied') : t('share.copy')}
        </button>
      </div>
      <span className="sr-only" aria-live="polite">
        {copied ? t('share.copied') : ''}
      </span>
    </div>
  );
}
