// Generates the web app's copy of the API contract from the server, so the two cannot drift:
//   src/api/limits.gen.ts  — the field and count limits (api-server/src/domain/mod.rs, `mod limits`)
//   src/api/openapi.json   — the OpenAPI document the API server serves at /api/openapi.json
//   src/api/schema.gen.ts  — TypeScript types from that document (openapi-typescript)
// Usage: node scripts/gen-api.mjs [--limits-only]   (the OpenAPI part needs `cargo build -p api-server`)
// src/api/drift.test.ts fails when the committed files differ from what this would write.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { limitsModule, parseRustLimits } from './limits-lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.resolve(here, '..');
const root = path.resolve(webDir, '..');
const apiDir = path.join(webDir, 'src', 'api');

const rust = readFileSync(path.join(root, 'api-server', 'src', 'domain', 'mod.rs'), 'utf8');
writeFileSync(path.join(apiDir, 'limits.gen.ts'), limitsModule(parseRustLimits(rust)));
console.log('wrote src/api/limits.gen.ts');
if (process.argv.includes('--limits-only')) process.exit(0);

const serverBin = process.env.API_SERVER_BIN || path.join(root, 'target', 'debug', 'api-server');
if (!existsSync(serverBin)) {
  console.error(`no API server at ${serverBin}: run "cargo build -p api-server" first`);
  process.exit(1);
}
const port = await new Promise((resolve, reject) => {
  const s = net.createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => {
    const { port: p } = s.address();
    s.close(() => resolve(p));
  });
});
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'beer-openapi-'));
const proc = spawn(serverBin, ['--bind', `127.0.0.1:${port}`, '--data-dir', dataDir], { stdio: 'ignore' });
try {
  let doc;
  for (let i = 0; i < 200 && !doc; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/api/openapi.json`);
      if (r.ok) doc = await r.json();
    } catch {
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  if (!doc) throw new Error('the API server did not serve /api/openapi.json');
  // `info.version` follows the crate version; keep it so a version bump shows in the diff.
  const jsonPath = path.join(apiDir, 'openapi.json');
  writeFileSync(jsonPath, JSON.stringify(doc, null, 2) + '\n');
  console.log('wrote src/api/openapi.json');
  execFileSync(
    path.join(webDir, 'node_modules', '.bin', 'openapi-typescript'),
    [jsonPath, '--output', path.join(apiDir, 'schema.gen.ts')],
    { stdio: 'inherit' },
  );
} finally {
  proc.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}
