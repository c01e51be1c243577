// The web app's copy of the API contract must match the server's. Fails when a limit in
// api-server/src/domain/mod.rs (or a maxLength in the OpenAPI document) differs from the web app's;
// fix by running `node scripts/gen-api.mjs`.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { limitsModule, parseRustLimits } from '../../scripts/limits-lib.mjs';
import { LIMITS } from './limits';

const root = path.resolve(__dirname, '..', '..', '..');
const rustLimits = path.join(root, 'api-server', 'src', 'domain', 'mod.rs');
const docPath = path.join(__dirname, 'openapi.json');
const serverBin = process.env.API_SERVER_BIN || path.join(root, 'target', 'debug', 'api-server');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

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
      secret: LIMITS.secret,
      // Place suggestions search by the start of a place name.
      q: LIMITS.placeName,
    };
    for (const [schema, s] of Object.entries(doc.components?.schemas ?? {})) {
      for (const [field, p] of Object.entries(s.properties ?? {})) {
        if (p.maxLength === undefined) continue;
        const want = schema.startsWith('Place') && field === 'name' ? LIMITS.placeName : byField[field];
        expect(p.maxLength, `${schema}.${field}`).toBe(want);
      }
    }
    const secrets = ['SecretInput', 'ReclaimInput'].map(
      (name) => (doc.components?.schemas?.[name]?.properties?.secret ?? {}) as { minLength?: number },
    );
    expect(secrets.map((p) => p.minLength)).toEqual([LIMITS.minSecret, LIMITS.minSecret]);
  });

  it('schema.gen.ts is what openapi-typescript makes of openapi.json', () => {
    const cli = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'openapi-typescript');
    const out = execFileSync(cli, [docPath], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(readFileSync(path.join(__dirname, 'schema.gen.ts'), 'utf8')).toBe(out);
  }, 30_000);

  // Needs the built server (`cargo build -p api-server`, which `make test` does before the web tests).
  it.skipIf(!existsSync(serverBin))('openapi.json is the document the server serves', async () => {
    const port = await freePort();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'beer-drift-'));
    const proc = spawn(serverBin, ['--bind', `127.0.0.1:${port}`, '--data-dir', dataDir], { stdio: 'ignore' });
    try {
      let served: unknown;
      for (let i = 0; i < 200 && !served; i++) {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/api/openapi.json`);
          if (r.ok) served = await r.json();
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      expect(served, 'the server did not serve /api/openapi.json').toBeDefined();
      // On a difference: `node scripts/gen-api.mjs` regenerates the web app's copy.
      expect(JSON.parse(readFileSync(docPath, 'utf8'))).toEqual(served);
    } finally {
      proc.kill('SIGTERM');
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
