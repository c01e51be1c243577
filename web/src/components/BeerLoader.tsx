import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';

/** A joke that changes every few seconds (loading and empty states). */
export function useJoke(intervalMs = 4500): string {
  const { t } = useTranslation();
  const jokes = t('jokes', { returnObjects: true }) as string[];
  const [i, setI] = useState(() => Math.floor(Math.random() * jokes.length));
  useEffect(() => {
    const id = window.setInterval(() => setI((x) => x + 1), intervalMs);
    return () => window.clearInterval(id);
  }, [intervalMs]);
  return jokes[i % jokes.length] ?? '';
}

export function BeerLoader({ label }: { label?: string }) {
  const joke = useJoke();
  return (
    <div className="loader" role="status" aria-live="polite">
      <div className="pint" aria-hidden="true">
        <div className="pint-fill" />
      </div>
      {label && <p className="sr-only">{label}</p>}
      <p className="joke">{joke}</p>
    </div>
  );
}

export function Joke() {
  const joke = useJoke(7000);
  return <p className="joke small">{joke}</p>;
}
