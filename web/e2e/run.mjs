// Browser tests: real Chromium drives the built web app (web/dist) served by the real API server.
// Two friends in two browser contexts: one creates a meetup with two places, the other joins by the
// link, drags availability and votes; the first sees it live, finalizes, and downloads the .ics.
// Runs at a phone and a desktop viewport, in English and Russian. Prints "N passed, M failed".
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.resolve(here, '..');
const root = path.resolve(webDir, '..');
const dist = path.join(webDir, 'dist');
const artifacts = path.join(root, 'tests', 'artifacts', 'e2e');
const screenshotsDoc = path.join(root, 'docs', 'screenshots');
const serverBin = process.env.API_SERVER_BIN || path.join(root, 'target', 'debug', 'api-server');
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const only = process.env.E2E_ONLY; // e.g. "phone-en" while developing
const updateDocs = process.env.E2E_UPDATE_SCREENSHOTS === '1';
const T = Number(process.env.E2E_TIMEOUT_MS || 15000);

const results = [];
const log = (...a) => console.log(...a);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`server did not answer ${url} within ${ms} ms`);
}

function startServer(port, dataDir) {
  const args = ['--bind', `127.0.0.1:${port}`, '--data-dir', dataDir, '--web-dir', dist];
  const isScript = serverBin.endsWith('.mjs') || serverBin.endsWith('.js');
  const proc = spawn(isScript ? process.execPath : serverBin, isScript ? [serverBin, ...args] : args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' },
  });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  proc.output = () => out;
  return proc;
}

function stopServer(proc) {
  return new Promise((resolve) => {
    if (!proc || proc.exitCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
    setTimeout(() => proc.exitCode === null && proc.kill('SIGKILL'), 3000);
  });
}

/** One scenario = a list of named steps; a failed step fails the rest (unless it is marked soft). */
async function scenario(name, steps) {
  let broken = null;
  for (const [title, fn, opts] of steps) {
    const full = `${name} › ${title}`;
    if (broken) {
      results.push({ name: full, ok: false, error: `not run: "${broken}" failed` });
      log(`  ✗ ${full} (not run)`);
      continue;
    }
    const t0 = Date.now();
    try {
      await fn();
      results.push({ name: full, ok: true });
      log(`  ✓ ${full} (${Date.now() - t0} ms)`);
    } catch (err) {
      if (!opts?.soft) broken = title;
      results.push({ name: full, ok: false, error: String(err?.stack || err) });
      log(`  ✗ ${full}\n    ${String(err?.message || err).split('\n').join('\n    ')}`);
    }
  }
}

function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

/** The element's box lies (at least its top part) inside the visible viewport. */
async function inViewport(page, selector) {
  return page.locator(selector).first().evaluate((el) => {
    const r = el.getBoundingClientRect();
    return r.top >= 0 && r.top < window.innerHeight && r.bottom > 0;
  });
}

/** Nothing pushes the page sideways: the document is exactly as wide as the viewport. */
async function noSidewaysScroll(page) {
  const w = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, view: window.innerWidth }));
  expect(w.doc === w.view, `document is ${w.doc}px wide in a ${w.view}px viewport`);
}

const STR = {
  en: { addPlace: /Add a place/, create: /Create the meetup/, join: /^🍺 Join$/, everyone: 'Everyone', decide: /It’s a date/, saved: 'Saved', youAre: 'You are' },
  ru: { addPlace: /Добавить место/, create: /Создать встречу/, join: /Присоединиться/, everyone: 'Все вместе', decide: /Договорились/, saved: 'Сохранено', youAre: 'Вы —' },
};

/** Drags over grid cells with a mouse, or with a real touch sequence (CDP) on touch devices. */
async function dragCells(page, from, to, touch) {
  const cell = (r, c) => page.locator(`table.paint td[data-r="${r}"][data-c="${c}"]`);
  const a = await cell(from.r, from.c).boundingBox();
  const b = await cell(to.r, to.c).boundingBox();
  expect(a && b, 'grid cells not visible');
  const p0 = { x: a.x + a.width / 2, y: a.y + a.height / 2 };
  const p1 = { x: b.x + b.width / 2, y: b.y + b.height / 2 };
  if (touch) {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [p0] });
    for (let i = 1; i <= 6; i++) {
      const x = p0.x + ((p1.x - p0.x) * i) / 6;
      const y = p0.y + ((p1.y - p0.y) * i) / 6;
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x, y }] });
    }
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    await cdp.detach();
  } else {
    await page.mouse.move(p0.x, p0.y);
    await page.mouse.down();
    await page.mouse.move(p1.x, p1.y, { steps: 8 });
    await page.mouse.up();
  }
}

async function runScenario(browser, base, { name, lang, viewport, touch, zones }) {
  // A full-page screenshot, and with `view` one screen scrolled to that element (for the docs).
  const shot = async (page, step, view) => {
    const file = path.join(artifacts, `${name}-${step}.png`);
    await page.screenshot({ path: file, fullPage: true });
    if (view) {
      await page.locator(view).first().evaluate((el) => el.scrollIntoView({ block: 'start' }));
      await page.evaluate(() => window.scrollBy(0, -12));
      await page.waitForTimeout(250);
      await page.screenshot({ path: path.join(artifacts, `${name}-${step}-view.png`) });
      await page.evaluate(() => window.scrollTo(0, 0));
    }
    return file;
  };
  const ctxOpts = (tz) => ({
    viewport,
    deviceScaleFactor: touch ? 2 : 1,
    isMobile: touch,
    hasTouch: touch,
    locale: lang === 'ru' ? 'ru-RU' : 'en-US',
    timezoneId: tz,
    acceptDownloads: true,
  });
  const orgCtx = await browser.newContext(ctxOpts(zones[0]));
  const friendCtx = await browser.newContext(ctxOpts(zones[1]));
  const extraCtxs = [];
  // A fresh browser (another device): nothing remembered.
  const freshPage = async (tz) => {
    const c = await browser.newContext(ctxOpts(tz));
    extraCtxs.push(c);
    const p = await c.newPage();
    p.setDefaultTimeout(T);
    p.on('pageerror', (e) => errors.push(`fresh: ${e.message}`));
    return p;
  };
  const org = await orgCtx.newPage();
  const friend = await friendCtx.newPage();
  const errors = [];
  for (const [who, p] of [['organizer', org], ['friend', friend]]) {
    p.setDefaultTimeout(T);
    p.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));
  }
  const s = STR[lang];
  const friendName = lang === 'ru' ? 'Боря' : 'Bob';
  const orgName = lang === 'ru' ? 'Аня' : 'Anna';
  const title = lang === 'ru' ? 'Пятничное пиво' : 'Friday pints';
  let shareUrl = '';
  let meetupPath = '';
  let dragged = [];
  let personalLink = '';
  const pin = lang === 'ru' ? 'пиво42' : '4711';

  await scenario(name, [
    ['the app speaks the language of the browser', async () => {
      await org.goto(base + '/');
      await org.waitForSelector('form.form');
      const htmlLang = await org.getAttribute('html', 'lang');
      expect(htmlLang === lang, `html lang is ${htmlLang}, want ${lang}`);
      await org.getByRole('button', { name: s.create }).waitFor();
    }],
    ['empty required fields get inline messages, and the focus goes to the first', async () => {
      await org.getByRole('button', { name: s.create }).click();
      await org.locator('#title-error').waitFor();
      await org.locator('#organizerName-error').waitFor();
      await org.waitForFunction(() => document.activeElement?.id === 'title');
      expect(await inViewport(org, '#title'), 'the first field with an error is not on screen');
      await shot(org, '1-create-empty');
    }],
    ['organizer creates a meetup with two places', async () => {
      await org.fill('#title', title);
      await org.fill('#organizerName', orgName);
      await org.fill('input[name="place-0-name"]', 'The Tipsy Cow');
      await org.fill('input[name="place-0-where"]', 'Main St 1');
      await org.getByRole('button', { name: s.addPlace }).click();
      await org.fill('input[name="place-1-name"]', 'Hop House');
      await org.locator('.rdp-root').waitFor();
      await shot(org, '1-create', 'body');
      await org.getByRole('button', { name: s.create }).click();
      await org.waitForURL(/\/m\/[^/]+$/);
      meetupPath = new URL(org.url()).pathname;
      await org.locator('.share.fresh').waitFor();
      shareUrl = await org.locator('.share.fresh input').first().inputValue();
      expect(shareUrl.endsWith(meetupPath), `share link ${shareUrl} does not point at ${meetupPath}`);
      const adminUrl = await org.locator('.share.fresh input').nth(1).inputValue();
      expect(/#admin=/.test(adminUrl), 'organizer link carries no admin token');
      const stored = await org.evaluate((id) => localStorage.getItem(`beer-meetup:m:${id}`), meetupPath.split('/').pop());
      expect(stored && JSON.parse(stored).adminToken, 'admin token not remembered in localStorage');
      expect((await org.locator('li.place').count()) === 2, 'two places expected');
      // The "ready" card with both links is what the organizer sees, not the middle of the page.
      expect(await inViewport(org, '#share-title'), `share card is off screen (scrollY ${await org.evaluate(() => window.scrollY)})`);
      await org.screenshot({ path: path.join(artifacts, `${name}-2-share-view.png`) });
      await shot(org, '2-share');
    }],
    ['a friend opens the link; a taken name gets the API’s inline error', async () => {
      await friend.goto(shareUrl);
      await friend.locator('#join-name').waitFor();
      await friend.fill('#join-name', orgName);
      await friend.locator('section.join button[type="submit"]').click();
      await friend.locator('#join-name-error').waitFor();
      await shot(friend, '2-friend-join');
    }],
    ['the friend joins and drags availability', async () => {
      // Both pages are on the live WebSocket (while it is open the app does not poll, so what the
      // organizer sees next can only come over the socket).
      await org.locator('.meetup[data-live="open"]').waitFor();
      await friend.locator('.meetup[data-live="open"]').waitFor();
      await friend.fill('#join-name', friendName);
      await friend.locator('section.join button[type="submit"]').click();
      await friend.locator('table.paint').waitFor();
      // The "keep your personal link" moment: focus moves to it, the link is there to copy.
      await friend.locator('[data-testid="save-link"]').waitFor();
      await friend.waitForFunction(() => document.activeElement?.id === 'save-link-title');
      personalLink = await friend.locator('[data-testid="save-link"] .copy-field input').inputValue();
      expect(/#p=/.test(personalLink) && !personalLink.includes('?'), `personal link ${personalLink}`);
      // In the same moment: a PIN, to get the name back on a device without the link.
      const pinForm = friend.locator('[data-testid="save-link"] [data-testid="pin-form"]');
      await pinForm.locator('input[type="password"]').fill(pin);
      await pinForm.locator('button[type="submit"]').click();
      await pinForm.locator('[data-testid="pin-done"]').waitFor();
      await shot(friend, '2-friend-save-link', '[data-testid="save-link"]');
      await friend.getByRole('button', { name: lang === 'ru' ? 'Сохранено' : 'Saved it' }).click();
      // The slots under the dragged rectangle (a week with a DST change in only one of the two
      // zones leaves holes in the grid, so count them instead of assuming 6).
      const cells = await friend.locator('table.paint td[data-slot]').evaluateAll((tds) =>
        tds.map((c) => ({ r: Number(c.dataset.r), c: Number(c.dataset.c), id: c.dataset.slot })));
      const from = cells.filter((x) => x.c === 0 && x.r <= 2).sort((a, b) => a.r - b.r)[0];
      const to = cells.filter((x) => x.c === 1 && x.r <= 2).sort((a, b) => b.r - a.r)[0];
      expect(from && to, 'no slots to drag over');
      dragged = cells.filter((x) => x.c <= 1 && x.r >= Math.min(from.r, to.r) && x.r <= Math.max(from.r, to.r)).map((x) => x.id);
      expect(dragged.length >= 3, `too few slots under the drag: ${dragged.length}`);
      await dragCells(friend, from, to, touch);
      await friend.waitForFunction((n) => document.querySelectorAll('table.paint td.yes').length === n, dragged.length);
      await friend.getByText(s.saved).first().waitFor();
      await shot(friend, '3-friend-paint', 'section.when');
    }],
    ['best times merge back-to-back hours with the same people into one range', async () => {
      await org.getByRole('tab', { name: s.everyone }).click();
      await org.locator('.best-times li[data-range]').first().waitFor();
      const first = await org.locator('.best-times li').first().getAttribute('data-range');
      expect(Number(first) >= 2, `first best time covers ${first} slot(s), want a merged range`);
      const rows = await org.locator('.best-times li.top').count();
      expect(rows <= 2, `${rows} 🥇 rows; adjacent slots were not merged`);
      await org.locator('#finalize .quick-ranges .chip').first().waitFor();
    }],
    ['the friend votes for a place', async () => {
      await friend.locator('li[data-place="Hop House"] .vote-btn').click();
      await friend.locator('li[data-place="Hop House"] .vote-btn[aria-pressed="true"]').waitFor();
    }],
    ['the organizer sees it live, names included, without reload', async () => {
      await org.getByRole('tab', { name: s.everyone }).click();
      await org.waitForFunction((ids) => ids.every((id) => document.querySelector(`table.heat td[data-slot="${id}"]`)?.dataset.count === '1'), dragged);
      await org.waitForFunction((n) => document.querySelectorAll('table.heat td[data-count="1"]').length === n, dragged.length);
      await org.locator('li[data-place="Hop House"] .name-chip', { hasText: friendName }).waitFor();
      await org.locator('.best-times', { hasText: friendName }).waitFor();
      await org.locator('aside.who .name-chip', { hasText: friendName }).waitFor();
      expect(new URL(org.url()).pathname === meetupPath, 'organizer page changed');
    }],
    ['the live WebSocket is connected: presence shows two friends', async () => {
      await org.locator('[data-testid="presence"]', { hasText: '2' }).waitFor();
    }, { soft: true }],
    ['the organizer paints with the keyboard; the friend sees it live', async () => {
      await org.getByRole('tab', { name: lang === 'ru' ? 'Когда могу я' : 'My availability' }).click();
      // Arrow keys move between cells; Space paints the focused one.
      await org.locator('table.paint td[data-r="0"][data-c="0"]').focus();
      await org.keyboard.press('ArrowRight');
      await org.keyboard.press('ArrowDown');
      const at = await org.evaluate(() => [document.activeElement?.dataset.r, document.activeElement?.dataset.c].join(','));
      expect(at === '1,1', `arrows moved focus to ${at}, want 1,1`);
      const target = dragged[Math.min(1, dragged.length - 1)];
      await org.locator(`table.paint td[data-slot="${target}"]`).focus();
      await org.keyboard.press('Space');
      await org.locator(`table.paint td[data-slot="${target}"].yes`).waitFor();
      await friend.getByRole('tab', { name: s.everyone }).click();
      await friend.waitForFunction(() => document.querySelectorAll('table.heat td[data-count="2"]').length === 1);
      await org.getByRole('tab', { name: s.everyone }).click();
      await org.locator('table.heat td.best').first().click();
      await shot(org, '4-organizer-live', 'section.when');
      await shot(org, '4-organizer-places', 'section.where');
      await shot(friend, '4-friend-heat');
    }],
    ['on a fresh browser the personal link brings the friend back to their answers', async () => {
      const other = await freshPage(zones[1]);
      await other.goto(personalLink);
      await other.locator('.me-bar', { hasText: friendName }).waitFor();
      expect(!other.url().includes('#'), 'the token stays in the address bar');
      expect((await other.locator('section.join').count()) === 0, 'asked to join again');
      await other.getByRole('tab', { name: lang === 'ru' ? 'Когда могу я' : 'My availability' }).click();
      await other.waitForFunction((n) => document.querySelectorAll('table.paint td.yes').length === n, dragged.length);
      await other.locator(`li[data-place="Hop House"] .vote-btn[aria-pressed="true"]`).waitFor();
      await shot(other, '3-friend-back');
    }],
    ['on a fresh browser the name and PIN bring the friend back; a wrong PIN is told clearly', async () => {
      const other = await freshPage(zones[1]);
      await other.goto(shareUrl);
      // Any case: the name is matched as "name taken" matches it.
      await other.fill('#join-name', friendName.toUpperCase());
      await other.locator('section.join button[type="submit"]').click();
      await other.locator('#join-name-error').waitFor();
      await other.locator('[data-testid="thats-you"]').click();
      const form = other.locator('[data-testid="reclaim"]');
      await other.waitForFunction(() => document.activeElement?.getAttribute('type') === 'password');
      await form.locator('input[type="password"]').fill('0000');
      await form.locator('button[type="submit"]').click();
      const wrong = await form.locator('[data-testid="reclaim-error"]').innerText();
      expect(wrong.includes(lang === 'ru' ? 'не совпадают' : 'don’t match'), `wrong-PIN message: ${wrong}`);
      expect(await inViewport(other, '[data-testid="reclaim-error"]'), 'the wrong-PIN message is off screen');
      await shot(other, '3-friend-wrong-pin', '[data-testid="reclaim"]');
      await form.locator('input[type="password"]').fill(pin);
      await form.locator('button[type="submit"]').click();
      await other.locator('.me-bar', { hasText: friendName }).waitFor();
      expect((await other.locator('section.join').count()) === 0, 'asked to join again');
      // The same participant, with the same token the first device holds.
      const id = meetupPath.split('/').pop();
      const stored = JSON.parse((await other.evaluate((k) => localStorage.getItem(k), `beer-meetup:m:${id}`)) || '{}');
      const firstToken = decodeURIComponent(personalLink.split('#p=')[1] || '');
      expect(stored.participantToken === firstToken, 'the PIN gave another token than the first device holds');
      await other.getByRole('tab', { name: lang === 'ru' ? 'Когда могу я' : 'My availability' }).click();
      await other.waitForFunction((n) => document.querySelectorAll('table.paint td.yes').length === n, dragged.length);
    }],
    ['the organizer’s PIN brings the organizer controls to a fresh browser', async () => {
      const orgPin = lang === 'ru' ? 'хмель77' : 'hops77';
      const card = org.locator('.card.share').first();
      if (await card.evaluate((el) => el.tagName === 'DETAILS' && !el.open)) await card.locator('summary').click();
      const pinForm = card.locator('[data-testid="pin-form"]');
      await pinForm.locator('input[type="password"]').fill(orgPin);
      await pinForm.locator('button[type="submit"]').click();
      await pinForm.locator('[data-testid="pin-done"]').waitFor();
      const other = await freshPage(zones[0]);
      await other.goto(shareUrl);
      await other.fill('#join-name', orgName);
      await other.locator('section.join button[type="submit"]').click();
      await other.locator('#join-name-error').waitFor();
      await other.locator('[data-testid="thats-you"]').click();
      const form = other.locator('[data-testid="reclaim"]');
      await form.locator('input[type="password"]').fill(orgPin);
      await form.locator('button[type="submit"]').click();
      await other.locator('.me-bar', { hasText: orgName }).waitFor();
      // Organizer controls, not just the organizer's answers.
      await other.locator('section.card.admin').waitFor();
      await shot(other, '3-organizer-back', 'section.card.admin');
    }],
    ['a 60-character name without spaces never widens the page', async () => {
      const longName = (lang === 'ru' ? 'Ж' : 'W').repeat(60);
      const other = await freshPage(zones[1]);
      await other.goto(shareUrl);
      await other.fill('#join-name', longName);
      await other.locator('section.join button[type="submit"]').click();
      await other.locator('table.paint').waitFor();
      await other.locator('table.paint td[data-slot]').first().click();
      await org.locator('.people-list', { hasText: longName }).waitFor();
      await org.locator('table.heat td[data-count]:not([data-count="0"])').first().click();
      for (const p of [other, org]) await noSidewaysScroll(p);
      // "Not you? / Leave" stay reachable on screen.
      const box = await other.locator('.me-bar button').first().boundingBox();
      expect(box && box.x + box.width <= viewport.width, 'Not you? is off screen');
      await shot(org, '4-long-name', 'section.people');
    }],
    ['the friend writes in the chat; the organizer reads it live', async () => {
      const text = lang === 'ru' ? 'Я за Hop House! 🍻' : 'Hop House it is! 🍻';
      await friend.fill('#comment-text', text);
      await friend.locator('.comment-form button[type="submit"]').click();
      await org.locator('.comment-list', { hasText: text }).waitFor();
    }],
    ['the organizer finalizes; both see the celebration', async () => {
      // The Decide dropdowns fit the screen (they were cut off on phones).
      for (const sel of ['#final-start', '#final-end', '#final-place']) {
        const box = await org.locator(sel).boundingBox();
        expect(box && box.x >= 0 && box.x + box.width <= viewport.width, `${sel} is cut off: ${JSON.stringify(box)}`);
      }
      await org.locator('#finalize button[type="submit"]').click();
      await org.locator('section.final').waitFor();
      await org.locator('section.final', { hasText: 'Hop House' }).waitFor();
      await friend.locator('section.final', { hasText: 'Hop House' }).waitFor();
      await org.evaluate(() => window.scrollTo(0, 0));
      await shot(org, '5-finalized', 'body');
      await shot(friend, '5-friend-finalized');
    }],
    ['a friend who comes after the decision sees a clear state', async () => {
      const late = await freshPage(zones[1]);
      await late.goto(shareUrl);
      await late.locator('[data-testid="late"]').waitFor();
      await late.locator('section.final').waitFor();
      expect((await late.locator('#join-name').count()) === 0, 'a join form after the decision');
      expect((await late.locator('.brushes').count()) === 0, 'brushes shown while answers are closed');
      const coming = await late.locator('section.final .who-names').innerText();
      expect(coming.includes(orgName), `"Coming" omits the organizer: ${coming}`);
      await noSidewaysScroll(late);
      await shot(late, '5-late-friend', 'body');
    }],
    ['the .ics downloads', async () => {
      const [download] = await Promise.all([
        friend.waitForEvent('download'),
        friend.locator('section.final a[download]').click(),
      ]);
      const file = path.join(artifacts, `${name}-event.ics`);
      await download.saveAs(file);
      const ics = readFileSync(file, 'utf8');
      expect(ics.includes('BEGIN:VCALENDAR') && ics.includes('BEGIN:VEVENT'), 'not an iCalendar file');
    }],
    ['no script errors on either page', async () => {
      expect(errors.length === 0, errors.join('\n'));
    }],
  ]);
  await orgCtx.close();
  await friendCtx.close();
  for (const c of extraCtxs) await c.close();
}

/**
 * An edit made while the server is down: shown as not saved, kept, and sent once the server is
 * back; the server then has it and the page says so.
 */
async function runOfflineEdit(browser, base, { name, lang, viewport, touch }, stop, start) {
  const ctx = await browser.newContext({ viewport, isMobile: touch, hasTouch: touch, locale: lang === 'ru' ? 'ru-RU' : 'en-US', timezoneId: 'Europe/Berlin' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  let id = '';
  let pid = '';
  const api = (p, init) => fetch(`${base}/api/v1${p}`, { headers: { 'Content-Type': 'application/json' }, ...init });
  await scenario(`offline-${name}`, [
    ['a friend opens their personal link', async () => {
      const r = await api('/meetups', {
        method: 'POST',
        body: JSON.stringify({ title: 'Offline test', organizerName: 'Anna', timeZone: 'Europe/Berlin', places: [{ name: 'Bar' }] }),
      });
      expect(r.status === 201, `create answered ${r.status}`);
      id = (await r.json()).meetup.id;
      const j = await api(`/meetups/${id}/participants`, { method: 'POST', body: JSON.stringify({ name: 'Dana' }) });
      const joined = await j.json();
      pid = joined.participant.id;
      await page.goto(`${base}/m/${id}#p=${encodeURIComponent(joined.token)}`);
      await page.locator('.me-bar', { hasText: 'Dana' }).waitFor();
      await page.locator('.meetup[data-live="open"]').waitFor();
    }],
    ['edits while the server is down are marked not saved, and kept', async () => {
      await stop();
      await page.locator('li[data-place="Bar"] .vote-btn').click();
      await page.locator('table.paint td[data-slot]').first().click();
      await page.locator('[data-testid="unsaved"]').waitFor({ timeout: 10000 });
      await page.locator('li[data-place="Bar"] .vote-btn[aria-pressed="true"]').waitFor();
      await page.locator('table.paint td.yes').first().waitFor();
      await page.locator('[data-testid="save-state"].save-offline').waitFor();
      await page.screenshot({ path: path.join(artifacts, `offline-${name}-unsaved.png`) });
    }],
    ['when the server is back they reach it, and the page says so', async () => {
      await start();
      await page.locator('[data-testid="recovered"]').waitFor({ timeout: 30000 });
      await page.screenshot({ path: path.join(artifacts, `offline-${name}-recovered.png`) });
      const m = await (await api(`/meetups/${id}`)).json();
      const dana = m.participants.find((p) => p.id === pid);
      expect(dana.placeVotes.length === 1, `server has votes ${JSON.stringify(dana.placeVotes)}`);
      expect(Object.keys(dana.availability).length === 1, `server has availability ${JSON.stringify(dana.availability)}`);
      // After a reload the page shows exactly what the server has.
      await page.reload();
      await page.locator('li[data-place="Bar"] .vote-btn[aria-pressed="true"]').waitFor();
      expect((await page.locator('[data-testid="unsaved"]').count()) === 0, 'still marked unsaved');
    }],
    ['no script errors', async () => {
      expect(errors.length === 0, errors.join('\n'));
    }],
  ]);
  await ctx.close();
}

/** The server goes away and comes back: the banner shows, then the page recovers by itself. */
async function runReconnect(browser, base, restart) {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: 'en-US', timezoneId: 'Europe/Berlin' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T);
  const other = await browser.newContext({ locale: 'en-US', timezoneId: 'Europe/Berlin' });
  let id = '';
  await scenario('reconnect', [
    ['a lost connection shows a banner and recovers', async () => {
      const r = await fetch(`${base}/api/v1/meetups`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ title: 'Reconnect test', organizerName: 'Anna', timeZone: 'Europe/Berlin', places: [{ name: 'Bar' }] }),
      });
      expect(r.status === 201, `create answered ${r.status}`);
      id = (await r.json()).meetup.id;
      await page.goto(`${base}/m/${id}`);
      await page.locator('[data-testid="presence"]').waitFor();
      await restart();
      await page.locator('[data-testid="reconnecting"]').waitFor({ timeout: 10000 });
      await page.screenshot({ path: path.join(artifacts, 'reconnect-banner.png') });
      await page.locator('[data-testid="reconnecting"]').waitFor({ state: 'detached', timeout: 25000 });
      await page.locator('[data-testid="presence"]').waitFor();
    }],
    ['after reconnecting, changes arrive live again', async () => {
      const r = await fetch(`${base}/api/v1/meetups/${id}/participants`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: 'Carl' }),
      });
      expect(r.status === 201, `join answered ${r.status}`);
      await page.locator('.people-list', { hasText: 'Carl' }).waitFor();
    }],
  ]);
  await ctx.close();
  await other.close();
}

async function main() {
  expect(existsSync(path.join(dist, 'index.html')), `no build in ${dist}: run "npm run build" first`);
  expect(existsSync(serverBin), `no API server at ${serverBin}: run "cargo build -p api-server" first`);
  expect(existsSync(chromiumPath), `no Chromium at ${chromiumPath} (scripts/test-deps.sh installs it)`);
  mkdirSync(artifacts, { recursive: true });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'beer-e2e-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  let server = startServer(port, dataDir);
  let browser;
  try {
    await waitForHttp(`${base}/`, 30000);
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const matrix = [
      { name: 'phone-en', lang: 'en', viewport: { width: 390, height: 844 }, touch: true, zones: ['Europe/Berlin', 'Europe/Moscow'] },
      { name: 'phone-ru', lang: 'ru', viewport: { width: 390, height: 844 }, touch: true, zones: ['Europe/Moscow', 'Europe/Moscow'] },
      { name: 'desktop-en', lang: 'en', viewport: { width: 1440, height: 900 }, touch: false, zones: ['America/New_York', 'Europe/London'] },
      { name: 'desktop-ru', lang: 'ru', viewport: { width: 1440, height: 900 }, touch: false, zones: ['Europe/Berlin', 'Asia/Yekaterinburg'] },
    ].filter((x) => !only || only.split(',').includes(x.name));
    for (const sc of matrix) {
      log(`${sc.name}:`);
      await runScenario(browser, base, sc);
    }
    const stop = async () => {
      await stopServer(server);
    };
    const start = async () => {
      server = startServer(port, dataDir);
      await waitForHttp(`${base}/`, 30000);
    };
    for (const sc of matrix.filter((x) => x.name === 'phone-en' || x.name === 'desktop-ru')) {
      log(`offline-${sc.name}:`);
      await runOfflineEdit(browser, base, sc, stop, start);
    }
    if (!only || only.includes('reconnect')) {
      log('reconnect:');
      await runReconnect(browser, base, async () => {
        await stopServer(server);
        await new Promise((r) => setTimeout(r, 1500));
        server = startServer(port, dataDir);
        await waitForHttp(`${base}/`, 30000);
      });
    }
    if (updateDocs) {
      mkdirSync(screenshotsDoc, { recursive: true });
      for (const f of ['phone-en-1-create', 'phone-ru-2-share', 'phone-en-2-friend-save-link', 'phone-ru-3-friend-paint',
        'phone-en-4-organizer-live', 'phone-en-4-organizer-places', 'phone-ru-4-long-name', 'phone-ru-5-finalized',
        'phone-en-5-late-friend', 'desktop-en-4-organizer-live', 'desktop-ru-5-finalized', 'desktop-en-2-friend-save-link',
        'phone-ru-3-friend-wrong-pin']) {
        const src = path.join(artifacts, `${f}-view.png`);
        if (existsSync(src)) copyFileSync(src, path.join(screenshotsDoc, `${f}.png`));
      }
      for (const f of ['offline-phone-en-unsaved', 'offline-phone-en-recovered']) {
        const src = path.join(artifacts, `${f}.png`);
        if (existsSync(src)) copyFileSync(src, path.join(screenshotsDoc, `${f}.png`));
      }
    }
  } catch (err) {
    results.push({ name: 'setup', ok: false, error: String(err?.stack || err) });
    log(`setup failed: ${err?.stack || err}`);
    if (server) log(server.output().slice(-3000));
  } finally {
    await browser?.close();
    await stopServer(server);
    rmSync(dataDir, { recursive: true, force: true });
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  if (failed) {
    log('\nFailures:');
    for (const r of results.filter((x) => !x.ok)) log(`- ${r.name}: ${r.error.split('\n')[0]}`);
  }
  log(`\n${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
