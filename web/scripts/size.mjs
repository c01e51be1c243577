// First-load JavaScript per route, gzipped: the entry chunk, its static imports, and the route's
// lazy chunk with its static imports (what the browser needs before the page can render).
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const manifest = JSON.parse(readFileSync(path.join(dist, '.vite', 'manifest.json'), 'utf8'));
const gz = (file) => gzipSync(readFileSync(path.join(dist, file)), { level: 9 }).length;

function closure(key, seen = new Set()) {
  if (seen.has(key)) return seen;
  seen.add(key);
  for (const dep of manifest[key].imports ?? []) closure(dep, seen);
  return seen;
}

const entryKey = Object.keys(manifest).find((k) => manifest[k].isEntry);
const routes = { '/ (create)': 'src/pages/CreatePage.tsx', '/m/:id (meetup)': 'src/pages/MeetupPage.tsx' };
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
let worst = 0;
for (const [route, src] of Object.entries(routes)) {
  const keys = new Set([...closure(entryKey), ...closure(src)]);
  const js = [...keys].reduce((sum, k) => sum + gz(manifest[k].file), 0);
  const css = [...keys].flatMap((k) => manifest[k].css ?? []).reduce((sum, f) => sum + gz(f), 0);
  worst = Math.max(worst, js);
  console.log(`${route.padEnd(18)} JS ${kb(js)} gzipped (+ CSS ${kb(css)})`);
}
const later = Object.keys(manifest).filter((k) => manifest[k].isDynamicEntry && !Object.values(routes).includes(k));
for (const k of later) console.log(`  loaded after render: ${k} ${kb(gz(manifest[k].file))}`);
const budget = 150 * 1024;
console.log(worst <= budget ? `within the 150 KB budget` : `OVER the 150 KB budget`);
process.exit(worst <= budget ? 0 : 1);
