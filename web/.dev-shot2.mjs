import { chromium } from 'playwright-core';
const base = 'http://127.0.0.1:18600';
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
const ctx = await b.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: process.argv[2] || 'en-US', timezoneId: 'Europe/Berlin' });
const p = await ctx.newPage();
await p.goto(`${base}/`);
await p.locator('.rdp-root').waitFor();
await p.screenshot({ path: '/tmp/dev-create.png' });
await b.close();
