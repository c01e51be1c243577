// The web app's copy of the API contract must match the server's. Fails when a limit in
// api-server/src/domain/mod.rs (or a maxLength in the OpenAPI document) differs from the web app's;
// fix by running `node scripts/gen-api.mjs`.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { limitsModule, parseRustLimits } from '../../scripts/limits-lib.mjs';
import { LIMITS } from './limits';

const root = path.resolve(__dirname, '..', '..', '..');
const rustLimits = path.join(root, 'api-server', 'src', 'domain', 'mod.rs');

describe('API contract drift', () => {
  it('every server limit equals the web app’s', () => {
    const server = parseRustLimits(readFileSync(rustLimits, 'utf8'));
    expect(LIMITS).toEqual(server);
  });

  it('limits.gen.ts is what the generator writes', () => {
    const server = parseRustLimits(readFileSync(rustLimits, 'utf8'));
    expect(readFileSync(path.join(__dirname, 'limits.gen.ts'), 'utf8')).toBe(limitsModule(server));
  });

  it('a changed server limit is caught', () => {
    const changed = readFileSync(rustLimits, 'utf8').replace(/MAX_PLACE_NAME_CHARS: usize = \d+/, 'MAX_PLACE_NAME_CHARS: usize = 7');
    expect(parseRustLimits(changed)).not.toEqual(LIMITS);
  });

  it('maxLength in the OpenAPI document (where the server states one) matches too', () => {
    const docPath = path.join(__dirname, 'openapi.json');
    if (!existsSync(docPath)) return;
    const doc = JSON.parse(readFileSync(docPath, 'utf8')) as {
      components?: { schemas?: Record<string, { properties?: Record<string, { maxLength?: number }> }> };
    };
    const byField: Record<string, number> = {
      name: LIMITS.name,
      organizerName: LIMITS.name,
      title: LIMITS.title,
      description: LIMITS.description,
      address: LIMITS.address,
      link: LIMITS.link,
      note: LIMITS.note,
      text: LIMITS.comment,
    };
    for (const [schema, s] of Object.entries(doc.components?.schemas ?? {})) {
      for (const [field, p] of Object.entries(s.properties ?? {})) {
        if (p.maxLength === undefined) continue;
        const want = schema.startsWith('Place') && field === 'name' ? LIMITS.placeName : byField[field];
        expect(p.maxLength, `${schema}.${field}`).toBe(want);
      }
    }
  });
});
