import { useTranslation } from 'react-i18next';
import { LANGUAGES } from '../i18n';

export function LangSwitch() {
  const { t, i18n } = useTranslation();
  const current = i18n.resolvedLanguage ?? 'en';
  return (
    <div className="lang" role="group" aria-label={t('app.language')}>
      {LANGUAGES.map((l) => (
        <button
          key={l.code}
          type="button"
          lang={l.code}
          className={current === l.code ? 'on' : ''}
          aria-pressed={current === l.code}
          title={l.label}
          onClick={() => void i18n.changeLanguage(l.code)}
        >
          {l.short}
        </button>
      ))}
    </div>
  );
}
