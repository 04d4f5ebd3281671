// What a trader does, step by step, with the checks after each step (see run.mjs).
import assert from 'node:assert/strict';
import path from 'node:path';
import { alertSteps } from './steps-alerts.mjs';
import { pendingOrders } from './steps-orders.mjs';
import { analyticsSteps } from './steps-analytics.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy (generous deadline: a loaded machine is slow). */
export async function until(what, fn, timeout = 30_000) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

export function step(name) {
  console.log(`  - ${name}`);
}

/** Fails on any console error or uncaught exception of the page. */
export function watch(page, label, errors) {
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${label}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${label}: ${e.message}`));
}

export async function noHorizontalOverflow(page, where) {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(scroll <= client, `${where}: the page scrolls sideways (${scroll} > ${client})`);
}

export const toast = (page, pattern) => page.getByRole('status').filter({ hasText: pattern }).first();

async function openFromTicket(page, { sl = '', tp = '', double = false }) {
  const ticket = page.getByRole('form', { name: 'Order ticket' });
  await ticket.getByLabel('Stop-loss').fill(sl);
  await ticket.getByLabel('Take-profit').fill(tp);
  const before = await page.getByRole('status').allTextContents();
  const buy = ticket.getByRole('button', { name: /^Buy 0\.0100 BTC$/ });
  if (double) await buy.dblclick();
  else await buy.click();
  const text = await until('the opened toast', async () => {
    const all = (await page.getByRole('status').allTextContents()).join(' ');
    const ids = [...all.matchAll(/Opened #(\d+)/g)].map((m) => m[1]);
    const seen = [...before.join(' ').matchAll(/Opened #(\d+)/g)].map((m) => m[1]);
    return ids.find((id) => !seen.includes(id));
  });
  return Number(text);
}

/** The element's box once it has stopped moving (the chart rescales as lines and quotes arrive). */
async function stableBox(locator) {
  let last = null;
  return until('a still box', async () => {
    const box = await locator.boundingBox();
    const same = box && last && ['x', 'y', 'width', 'height'].every((k) => Math.abs(box[k] - last[k]) < 0.5);
    last = box;
    if (same) return box;
    await sleep(300);
    return null;
  });
}

export function positionRow(page, id) {
  return page.getByRole('row').filter({ has: page.getByRole('button', { name: `Close position ${id}` }) });
}

/** The whole visit; `t` carries what the steps share (the browser, the platform, the trader, pages). */
export async function scenario({ browser, platform, binance, artifacts }) {
  const t = { browser, platform, binance, artifacts, errors: [] };
  t.email = `trader-${Date.now()}@example.com`;
  t.password = 'correct horse battery';
  t.desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  t.page = await t.desktop.newPage();
  watch(t.page, 'desktop', t.errors);
  t.account = t.page.getByLabel('Account');
  t.chart = t.page.getByRole('img', { name: /Candlestick chart of BTC/ });
  await signUpAndQuotes(t);
  await olderCandles(t);
  t.first = await openAndWatch(t);
  await dragTakeProfit(t);
  await closeAndStopLoss(t);
  await analyticsSteps(t);
  await desktopScreenshotAndKeyboard(t);
  await pendingOrders(t);
  t.phone = await phoneLayout(t);
  await rejectedToken(t);
  await referenceReconnectCors(t);
  await alertSteps(t);
  assert.deepEqual(t.errors, [], 'no console errors');
}

async function signUpAndQuotes(t) {
  const { platform, binance, email, password, page, account } = t;
  step('sign up and see the demo balance');
  await page.goto(platform.web);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await until('the account bar', async () => (await account.textContent())?.includes('10,000.00'));

  step('quotes arrive and move');
  const btc = page.getByRole('button', { name: /^BTC/ });
  await until('the first BTC quote', async () => (await btc.textContent())?.includes('65,000.00'));
  binance.set('BTC', '65010.00', '65011.00');
  await until('the BTC quote to move', async () => (await btc.textContent())?.includes('65,010.00'));
  await until('the simulated badge to stay away and the feed to be live', async () =>
    (await page.getByText('Live', { exact: true }).count()) === 1 && (await page.getByText('Simulated feed').count()) === 0);
}

async function openAndWatch(t) {
  const { binance, artifacts, page, account, chart } = t;
  step('the ticket previews margin and liquidation, then opens a position');
  const ticket = page.getByRole('form', { name: 'Order ticket' });
  await ticket.getByLabel('Take-profit').fill('65500.00');
  // 0.01 BTC at the ask 65,011.00 with 1:10: margin 65.02 (65.011 rounded up), liquidation 58,509.00.
  await until('the preview', async () => {
    const t = await ticket.textContent();
    return t.includes('65.02 USD') && t.includes('58,509.00') && t.includes('65,011.00');
  });
  const first = await openFromTicket(page, { tp: '65500.00' });
  const row = positionRow(page, first);
  await row.waitFor();

  step('the open position shows live PnL and its lines on the chart');
  binance.set('BTC', '65110.00', '65111.00');
  await until('live PnL +0.99', async () => (await row.textContent()).includes('+0.99'));
  await until('floating PnL in the account bar', async () => (await account.textContent()).includes('+0.99'));
  await until('entry, take-profit and liquidation lines', async () => {
    const label = await chart.getAttribute('aria-label');
    return label.includes(`#${first} buy entry 65,011.00`) && label.includes(`#${first} take-profit 65,500.00`) &&
      label.includes(`#${first} liquidation 58,509.00`);
  });
  await page.screenshot({ path: path.join(artifacts, 'desktop-open.png') });
  return first;
}

async function olderCandles(t) {
  const { page, chart } = t;
  step('scrolling left loads older candles');
  const count = async () => Number((await chart.getAttribute('aria-label')).match(/, (\d+) candles?/)?.[1] ?? 0);
  await until('the first page of candles', async () => (await count()) >= 300);
  const box = await chart.boundingBox();
  await until('older candles after dragging the chart to the right', async () => {
    await page.mouse.move(box.x + 60, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width - 120, box.y + box.height / 2, { steps: 6 });
    await page.mouse.up();
    return (await count()) > 300;
  });
  await page.getByRole('button', { name: '1m', exact: true }).click(); // back to the newest candles
  await until('the chart reloaded', async () => (await count()) >= 300);
}

async function dragTakeProfit(t) {
  const { errors, page, first, chart } = t;
  const row = positionRow(page, first);
  step('dragging the take-profit line modifies the position');
  const handle = page.getByRole('slider', { name: `Take-profit of position ${first}` });
  // On a loaded machine the chart can still rescale between finding the handle and pressing
  // the mouse, so the press misses it: drag again until the handle has moved up.
  let dragged;
  await until('the take-profit handle dragged up', async () => {
    const box = await stableBox(handle);
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2 - 50, { steps: 8 });
    await page.mouse.up();
    dragged = await handle.getAttribute('aria-valuenow');
    return Number(dragged) > 65500;
  });
  await until('the modify toast', async () => (await toast(page, `Position #${first}: stop-loss none, take-profit ${dragged}`).count()) > 0);
  const shown = Number(dragged).toLocaleString('en-US', { minimumFractionDigits: 2 });
  await until('the new take-profit in the list', async () => (await row.textContent()).includes(shown));

  step('a refused drag snaps back');
  const modifyErrors = errors.length;
  // Far below the bid: the engine's rule (a buy's take-profit above the bid) refuses it. As
  // above, a press that missed the handle is tried again.
  await until('the refusal toast after a drag below the bid', async () => {
    const box2 = await stableBox(page.getByRole('slider', { name: `Take-profit of position ${first}` }));
    await page.mouse.move(box2.x + box2.width / 2, box2.y + box2.height / 2);
    await page.mouse.down();
    const canvas = await stableBox(chart);
    await page.mouse.move(box2.x + box2.width / 2, canvas.y + canvas.height * 0.65, { steps: 8 });
    await page.mouse.up();
    const refused = () => toast(page, 'Not modified').count();
    for (let i = 0; i < 25 && (await refused()) === 0; i++) await sleep(200);
    return (await refused()) > 0;
  }, 60_000);
  await until('the handle back at its level', async () =>
    (await page.getByRole('slider', { name: `Take-profit of position ${first}` }).getAttribute('aria-valuenow')) === dragged);
  assert.equal(errors.length, modifyErrors);
}

async function closeAndStopLoss(t) {
  const { binance, page, first } = t;
  step('close it and find it in history with reason manual');
  await page.getByRole('button', { name: `Close position ${first}` }).click();
  await until('the close toast', async () => (await toast(page, `Closed #${first}`).count()) > 0);
  await page.getByRole('tab', { name: 'Closed' }).click();
  const closedRow = page.getByRole('row').filter({ hasText: 'Manual' }).filter({ has: page.getByRole('cell', { name: String(first), exact: true }) });
  await closedRow.waitFor();
  await page.getByRole('tab', { name: /^Open/ }).click();

  step('a double click opens one position, and a stop-loss close shows a toast');
  const second = await openFromTicket(page, { sl: '65000.00', double: true });
  await positionRow(page, second).waitFor();
  await sleep(1500); // a second position, if the double click had sent two, would be listed by now
  await until('the list to settle', async () => (await page.getByRole('button', { name: /^Close position/ }).count()) === 1);
  binance.set('BTC', '64900.00', '64901.00');
  await until('the stop-loss toast', async () => (await toast(page, `Stop-loss: position #${second}`).count()) > 0);
}

async function desktopScreenshotAndKeyboard(t) {
  const { binance, artifacts, page } = t;
  step('desktop screenshot with a position on the chart');
  const third = await openFromTicket(page, { sl: '64500.00', tp: '65400.00' });
  await positionRow(page, third).waitFor();
  binance.set('BTC', '64950.00', '64951.00');
  await until('PnL of the third position', async () => (await positionRow(page, third).textContent()).includes('+0.49'));
  await noHorizontalOverflow(page, 'desktop');
  const dismiss = page.getByRole('button', { name: 'Dismiss' });
  while ((await dismiss.count()) > 0) await dismiss.first().click();
  await page.mouse.move(600, 200); // the crosshair and its legend, as a trader sees them
  await page.screenshot({ path: path.join(artifacts, 'desktop.png') });

  step('keyboard: focus is visible and the ticket is reachable');
  await page.getByRole('button', { name: 'Sign out' }).focus();
  await page.keyboard.press('Tab');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none', 'the focused element shows an outline');
}

async function phoneLayout(t) {
  const { platform, artifacts, errors, email, password } = t;
  step('phone: panels are tabs and nothing scrolls sideways');
  const phone = await t.browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const mobile = await phone.newPage();
  watch(mobile, 'phone', errors);
  await mobile.goto(platform.web);
  await mobile.getByLabel('Email').fill(email);
  await mobile.getByLabel('Password').fill(password);
  await mobile.getByRole('button', { name: 'Sign in' }).click();
  await mobile.getByRole('tab', { name: 'Chart' }).waitFor();
  await until('the phone account bar', async () => (await mobile.getByLabel('Account').textContent())?.includes('Equity'));
  for (const tab of ['Markets', 'Trade', 'Positions', 'Chart']) {
    await mobile.getByRole('tab', { name: tab, exact: true }).click();
    await sleep(300);
    await noHorizontalOverflow(mobile, `phone ${tab}`);
    if (tab !== 'Chart') await mobile.screenshot({ path: path.join(artifacts, `phone-${tab.toLowerCase()}.png`) });
  }
  await mobile.getByRole('tab', { name: 'Markets', exact: true }).click();
  await mobile.getByRole('button', { name: /^ETH/ }).click();
  await mobile.getByRole('img', { name: /Candlestick chart of ETH/ }).waitFor(); // picking one shows its chart
  await mobile.getByRole('tab', { name: 'Markets', exact: true }).click();
  await mobile.getByRole('button', { name: /^BTC/ }).click();
  await until('the chart panel on the phone', async () => (await mobile.getByRole('img', { name: /Candlestick chart/ }).isVisible()));
  await sleep(500);
  await mobile.screenshot({ path: path.join(artifacts, 'phone.png') });
  return phone;
}

async function rejectedToken(t) {
  const { platform, phone } = t;
  step('a rejected token signs the trader out with a message');
  const expired = await phone.newPage(); // not watched: the browser logs the 401 as an error
  await expired.addInitScript(() => {
    if (!sessionStorage.getItem('seeded')) {
      sessionStorage.setItem('seeded', '1');
      sessionStorage.setItem('exness.token', 'not-a-valid-token');
      sessionStorage.setItem('exness.email', 'someone@example.com');
    }
  });
  await expired.goto(platform.web);
  await toast(expired, 'Your session has ended').waitFor();
  await expired.getByRole('button', { name: 'Sign in' }).waitFor();
  assert.equal(await expired.evaluate(() => sessionStorage.getItem('exness.token')), null);
}

async function referenceReconnectCors(t) {
  const { platform, binance, artifacts, errors, email, password, page, desktop } = t;
  step('the API reference renders the OpenAPI document (CORS allows the reference origin)');
  const docs = await desktop.newPage();
  watch(docs, 'reference', errors);
  await docs.goto(platform.docs);
  await docs.getByRole('heading', { name: 'WebSocket protocol' }).waitFor();
  await until('the operations', async () => (await docs.getByText('/api/v1/trade/open').count()) > 0);
  await docs.screenshot({ path: path.join(artifacts, 'reference.png') });

  step('a dropped price socket shows Disconnected, then reconnects by itself');
  const flaky = await desktop.newPage(); // not watched: refused sockets may be logged
  let refuse = false;
  const sockets = [];
  await flaky.routeWebSocket(() => true, (ws) => {
    if (refuse) {
      ws.close();
      return;
    }
    sockets.push(ws);
    ws.connectToServer();
  });
  await flaky.goto(platform.web);
  await flaky.getByLabel('Email').fill(email);
  await flaky.getByLabel('Password').fill(password);
  await flaky.getByRole('button', { name: 'Sign in' }).click();
  await flaky.getByText('Live', { exact: true }).waitFor();
  refuse = true;
  for (const ws of sockets) await ws.close();
  await flaky.getByText('Disconnected', { exact: true }).waitFor();
  await flaky.getByRole('button', { name: 'Reconnect' }).waitFor();
  refuse = false; // the page's own retry (backoff with jitter) gets through now
  binance.set('BTC', '64960.00', '64961.00');
  await until('quotes again after the reconnect', async () =>
    (await flaky.getByRole('button', { name: /^BTC/ }).textContent()).includes('64,960.00'));

  step('CORS refuses another origin');
  const elsewhere = await desktop.newPage(); // not watched: the refusal is logged as a console error
  await elsewhere.goto(binance.httpUrl);
  const outcome = await elsewhere.evaluate((api) => fetch(`${api}/api/v1/assets`).then(() => 'allowed', () => 'blocked'), platform.api);
  assert.equal(outcome, 'blocked');
  const fromPage = await page.evaluate((api) => fetch(`${api}/api/v1/assets`).then((r) => r.status, () => 'blocked'), platform.api);
  assert.equal(fromPage, 200);
}
