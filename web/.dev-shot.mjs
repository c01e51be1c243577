import { chromium } from 'playwright-core';
const base = 'http://127.0.0.1:18600';
const r = await fetch(base + '/api/v1/meetups', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ title: 'Long night', organizerName: 'Anna', timeZone: 'Europe/Berlin', slotMinutes: 30, window: { start: '17:00', end: '01:00' }, days: ['2026-11-27', '2026-11-28', '2026-11-29', '2026-11-30', '2026-12-01'], places: [{ name: 'Bar' }] }) });
const c = await r.json();
const id = c.meetup.id;
const slots = c.meetup.slots.map((s) => s.id);
const names = ['Bob', 'Carl', 'Dana', 'Eve', 'Fyodor', 'Gleb'];
for (const [i, n] of names.entries()) {
  const j = await (await fetch(`${base}/api/v1/meetups/${id}/participants`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: n }) })).json();
  const availability = {};
  slots.forEach((s, k) => { if ((k + i) % 3 !== 0) availability[s] = k % 5 === 0 ? 'maybe' : 'yes'; });
  await fetch(`${base}/api/v1/meetups/${id}/participants/${j.participant.id}`, { method: 'PATCH', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${j.token}` }, body: JSON.stringify({ availability }) });
}
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
const ctx = await b.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: process.argv[2] || 'en-US', timezoneId: 'Europe/Berlin' });
const p = await ctx.newPage();
await p.goto(`${base}/m/${id}`);
await p.locator('table.heat').waitFor();
await p.locator('.grid-scroll').evaluate((el) => { el.scrollIntoView(); el.scrollTop = 300; });
await p.waitForTimeout(300);
await p.screenshot({ path: '/tmp/dev-long.png' });
await p.setViewportSize({ width: 1366, height: 900 });
await p.waitForTimeout(300);
await p.screenshot({ path: '/tmp/dev-long-desktop.png' });
await b.close();
