import type { TFunction } from 'i18next';
import { ApiError } from '../api/client';

/** "places[0].name", "/places/0/name" and "places.0.name" all become "places.0.name". */
export function normField(field: string): string {
  return field
    .replace(/\[(\d+)\]/g, '.$1')
    .replace(/^\/+/, '')
    .replace(/\//g, '.');
}

/** Field errors of an API problem, keyed by normalized field path. */
export function fieldErrors(err: unknown): Record<string, string> {
  if (!(err instanceof ApiError)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(err.fields)) out[normField(k)] = v;
  return out;
}

/** A sentence for the person, from any error. */
export function errorText(err: unknown, t: TFunction): string {
  if (err instanceof ApiError) {
    if (err.status === 0) return t('errors.network');
    if (err.status === 429) return t('errors.rateLimited');
    if (err.status === 404) return t('errors.notFound');
    return err.detail || t('errors.generic', { message: err.title });
  }
  return t('errors.generic', { message: err instanceof Error ? err.message : String(err) });
}

/** Errors whose field the form does not show next to an input. */
export function unplacedErrors(fields: Record<string, string>, shown: (key: string) => boolean) {
  return Object.entries(fields)
    .filter(([k]) => !shown(k))
    .map(([, v]) => v);
}
