import { useEffect, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { api } from '../api/client';

export type Suggestion = { name: string; address?: string; link?: string };

/** Places used before whose name starts with `q` (debounced), for a <datalist>. */
export function usePlaceSuggestions(q: string): Suggestion[] {
  const [debounced, setDebounced] = useState(q);
  useEffect(() => {
    const id = window.setTimeout(() => setDebounced(q.trim()), 250);
    return () => window.clearTimeout(id);
  }, [q]);
  const { data } = useQuery({
    queryKey: ['place-suggestions', debounced],
    queryFn: () => api.placeSuggestions(debounced),
    enabled: debounced.length >= 2,
    staleTime: 5 * 60_000,
    retry: false,
  });
  return data ?? [];
}

export function SuggestionList({ id, items }: { id: string; items: Suggestion[] }) {
  return (
    <datalist id={id}>
      {items.map((s) => (
        <option key={`${s.name}|${s.address ?? ''}`} value={s.name}>
          {s.address ?? s.link ?? ''}
        </option>
      ))}
    </datalist>
  );
}

/** Where a picked suggestion is: its address, else its link. */
export function whereOf(items: Suggestion[], name: string): string | undefined {
  const hit = items.find((s) => s.name === name);
  return hit ? (hit.address ?? hit.link) : undefined;
}
