import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import en from './en';
import ru from './ru';

type Tree = { [k: string]: string | string[] | Tree };

function flatten(t: Tree, prefix = ''): Map<string, string | string[]> {
  const out = new Map<string, string | string[]>();
  for (const [k, v] of Object.entries(t)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string' || Array.isArray(v)) out.set(key, v);
    else for (const [kk, vv] of flatten(v, key)) out.set(kk, vv);
  }
  return out;
}

const EN_PLURALS = ['one', 'other'];
const RU_PLURALS = ['one', 'few', 'many', 'other'];
const pluralBase = (k: string) => k.replace(/_(zero|one|two|few|many|other)$/, '');
const vars = (s: string) => [...s.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]).sort();

const enKeys = flatten(en as unknown as Tree);
const ruKeys = flatten(ru as unknown as Tree);

describe('translations', () => {
  it('Russian has every English key (plurals in all Russian forms)', () => {
    const missing: string[] = [];
    for (const key of enKeys.keys()) {
      const base = pluralBase(key);
      if (base !== key) {
        for (const form of RU_PLURALS) if (!ruKeys.has(`${base}_${form}`)) missing.push(`${base}_${form}`);
      } else if (!ruKeys.has(key)) missing.push(key);
    }
    expect([...new Set(missing)]).toEqual([]);
  });

  it('Russian has no keys English lacks', () => {
    const enBases = new Set([...enKeys.keys()].map(pluralBase));
    const extra = [...ruKeys.keys()].filter((k) => !enBases.has(pluralBase(k)));
    expect(extra).toEqual([]);
  });

  it('English plurals have one and other', () => {
    const bases = new Set([...enKeys.keys()].filter((k) => pluralBase(k) !== k).map(pluralBase));
    for (const b of bases) for (const f of EN_PLURALS) expect(enKeys.has(`${b}_${f}`), `${b}_${f}`).toBe(true);
  });

  it('no string is empty and placeholders match', () => {
    for (const [k, v] of ruKeys) {
      if (Array.isArray(v)) {
        expect(v.length, k).toBeGreaterThan(0);
        continue;
      }
      expect(v.trim(), k).not.toBe('');
      const enV = pluralBase(k) !== k ? enKeys.get(`${pluralBase(k)}_other`) : enKeys.get(k);
      if (typeof enV === 'string') expect(vars(v), k).toEqual(vars(enV));
    }
  });

  it('every key the code uses exists in English', () => {
    const dir = join(process.cwd(), 'src');
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.tsx?$/.test(f) && !/\.test\.tsx?$/.test(f) && !p.includes('/i18n/')) files.push(p);
      }
    };
    walk(dir);
    const bases = new Set([...enKeys.keys()].map(pluralBase));
    const used = new Set<string>();
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/\bt\(\s*'([a-zA-Z0-9_.]+)'/g)) used.add(m[1]);
    }
    expect(used.size).toBeGreaterThan(50);
    const unknown = [...used].filter((k) => !enKeys.has(k) && !bases.has(k) && !enKeys.has(`${k}.0`) && k !== 'jokes');
    expect(unknown).toEqual([]);
  });
});
