// Two friends in real Chromium, through the platform's HAProxy ingress on 127.0.0.1, while the
// cluster loses an API pod and then the Redis primary. Run by tests/tests/e2e.rs (step 6), which
// sets the environment below; playwright-core comes from web/node_modules (run from web/).
//
//   E2E_BASE_URL   http://<ingress host>:<NodePort>
//   E2E_HOST_RULE  Chromium --host-resolver-rules, mapping the ingress host to 127.0.0.1
//   E2E_NAMESPACE, E2E_PLATFORM, KUBECONFIG, KUBECTL
//   E2E_ARTIFACTS  where screenshots go
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

// playwright-core is the web app's dev dependency: resolve it from web/, not from this folder.
const { chromium } = createRequire(new URL('../../web/package.json', import.meta.url))('playwright-core');

const base = process.env.E2E_BASE_URL;
const namespace = process.env.E2E_NAMESPACE;
const platform = process.env.E2E_PLATFORM;
const kubectlPath = process.env.KUBECTL || 'kubectl';
const artifacts = process.env.E2E_ARTIFACTS || 'e2e-artifacts';
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const T = Number(process.env.E2E_TIMEOUT_MS || 20000);
// After a lost pod or a failover the page reconnects; give it time on a busy 2-core machine.
const RECOVERY = Number(process.env.E2E_RECOVERY_MS || 90000);

const log = (...a) => console.log('[friends]', ...a);
const expect = (cond, msg) => {
  if (!cond) throw new Error(msg);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function kubectl(...args) {
  return execFileSync(kubectlPath, args, { encoding: 'utf8', env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

function apiPods() {
  const pods = JSON.parse(
    kubectl('get', 'pods', '-n', namespace, '-l', `app.kubernetes.io/instance=${platform},app.kubernetes.io/component=api`, '-o', 'json'),
  );
  return pods.items
    .filter((p) => !p.metadata.deletionTimestamp && p.status.phase === 'Running')
    .map((p) => p.metadata.name);
}

/** Open live connections per API pod, read from each pod's /metrics through the apiserver proxy. */
function liveConnections() {
  const counts = {};
  for (const pod of apiPods()) {
    try {
      const text = kubectl('get', '--raw', `/api/v1/namespaces/${namespace}/pods/${pod}:8080/proxy/metrics`);
      const line = text.split('\n').find((l) => l.startsWith('live_connections'));
      counts[pod] = line ? Number(line.trim().split(/\s+/).pop()) : 0;
    } catch {
      counts[pod] = 0;
    }
  }
  return counts;
}

/** Reloads `page` until the two pages' WebSockets sit on two different API pods. */
async function spreadAcrossPods(pages) {
  for (let attempt = 0; attempt < 8; attempt++) {
    const counts = liveConnections();
    const busy = Object.values(counts).filter((n) => n > 0).length;
    log('live connections per API pod:', JSON.stringify(counts));
    if (busy >= 2) return counts;
    // HAProxy balances round-robin per request: a page load makes the same requests every time,
    // so its WebSocket lands on the same pod again unless the count before it changes.
    const page = pages[attempt % pages.length];
    for (let i = 0; i <= attempt; i++) await page.evaluate(() => fetch('/api/openapi.json').then((r) => r.text()));
    await page.reload();
    await pages[attempt % pages.length].locator('.meetup[data-live="open"]').waitFor({ timeout: RECOVERY });
    await sleep(500);
  }
  throw new Error(`the two friends' WebSockets never sat on different API pods: ${JSON.stringify(liveConnections())}`);
}

async function voteAndSee(friend, org, place, friendName, { on }) {
  const button = friend.locator(`li[data-place="${place}"] .vote-btn`);
  const pressed = await button.getAttribute('aria-pressed');
  if ((pressed === 'true') !== on) await button.click();
  await friend.locator(`li[data-place="${place}"] .vote-btn[aria-pressed="${on}"]`).waitFor({ timeout: T });
  const chip = org.locator(`li[data-place="${place}"] .name-chip`, { hasText: friendName });
  if (on) await chip.waitFor({ timeout: RECOVERY });
  else await chip.waitFor({ state: 'detached', timeout: RECOVERY });
}

async function main() {
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [`--host-resolver-rules=${process.env.E2E_HOST_RULE}`, '--no-sandbox'],
  });
  const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  try {
    const org = await (await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'en-US' })).newPage();
    const friend = await (
      await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US', isMobile: true, hasTouch: true })
    ).newPage();
    for (const page of [org, friend]) page.setDefaultTimeout(T);

    log('organizer creates a meetup through the ingress');
    await org.goto(`${base}/`);
    await org.fill('#title', 'Friday pints, for real');
    await org.fill('#organizerName', 'Ann');
    await org.fill('input[name="place-0-name"]', 'Hop House');
    await org.getByRole('button', { name: /Add a place/ }).click();
    await org.fill('input[name="place-1-name"]', 'The Tipsy Cow');
    await org.getByRole('button', { name: /Create the meetup/ }).click();
    await org.locator('.share.fresh').waitFor();
    const shareUrl = await org.locator('.share.fresh input').first().inputValue();
    expect(shareUrl.startsWith(base), `share link ${shareUrl} is not on ${base}`);
    await org.locator('.meetup[data-live="open"]').waitFor();

    log('a friend joins by the link on a phone');
    await friend.goto(shareUrl);
    await friend.fill('#join-name', 'Bea');
    await friend.locator('section.join button[type="submit"]').click();
    await friend.locator('table.paint').waitFor();
    await friend.locator('.meetup[data-live="open"]').waitFor();
    const saveIt = friend.getByRole('button', { name: 'Saved it' });
    if (await saveIt.count()) await saveIt.click();
    await friend.locator('table.paint td[data-slot]').first().click();
    await org.getByRole('tab', { name: 'Everyone' }).click();
    await org.locator('aside.who .name-chip', { hasText: 'Bea' }).waitFor();

    log('their WebSockets sit on different API pods');
    await spreadAcrossPods([friend, org]);
    await voteAndSee(friend, org, 'Hop House', 'Bea', { on: true });
    await shot(org, 'organizer-sees-vote');

    log('an API pod is deleted mid-session');
    const victim = apiPods()[0];
    kubectl('delete', 'pod', '-n', namespace, victim, '--wait=false');
    await sleep(2000);
    await voteAndSee(friend, org, 'The Tipsy Cow', 'Bea', { on: true });
    log(`after losing ${victim} the organizer still sees votes live`);
    await spreadAcrossPods([friend, org]);

    log('the Redis primary is killed; Sentinel promotes a replica');
    const primary = `${platform}-redis-0`;
    kubectl('delete', 'pod', '-n', namespace, primary, '--grace-period=0', '--force', '--wait=false');
    await sleep(1000);
    await voteAndSee(friend, org, 'Hop House', 'Bea', { on: false });
    await voteAndSee(friend, org, 'Hop House', 'Bea', { on: true });
    log('votes keep arriving after the failover');
    await shot(org, 'after-failover');
    await shot(friend, 'friend-after-failover');
    log('all steps passed');
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error('[friends] FAILED:', error?.stack || error);
  process.exit(1);
});
