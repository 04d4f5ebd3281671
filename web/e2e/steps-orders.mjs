// The browser test's pending-order steps (issue 10), called from scenario.mjs: a limit order
// placed from the ticket, listed under Pending and drawn on the chart; a stop order modified
// and cancelled; the limit order filling when the stand-in's price reaches it; then a partial
// close and a trailing stop on the position it opened. Desktop and phone screenshots.
import assert from 'node:assert/strict';
import path from 'node:path';
import { noHorizontalOverflow, positionRow, step, toast, until, watch } from './scenario.mjs';

function orderRow(page, id) {
  return page.getByRole('row').filter({ has: page.getByRole('button', { name: `Cancel order ${id}`, exact: true }) });
}

/** The number in the newest toast matching `pattern` (with one capture group) not seen in `before`. */
async function newToastNumber(page, what, pattern, before) {
  return Number(await until(what, async () => {
    const all = (await page.getByRole('status').allTextContents()).join(' ');
    const seen = [...before.join(' ').matchAll(pattern)].map((m) => m[1]);
    return [...all.matchAll(pattern)].map((m) => m[1]).find((id) => !seen.includes(id));
  }));
}

/** A `datetime-local` value a day ahead (local time, like the page reads it). */
function tomorrow() {
  const d = new Date(Date.now() + 24 * 3600_000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function dismissToasts(page) {
  const dismiss = page.getByRole('button', { name: 'Dismiss' });
  while ((await dismiss.count()) > 0) await dismiss.first().click();
}

export async function pendingOrders(t) {
  const limit = await placeLimit(t);
  const stop = await placeAndModifyStop(t);
  await pendingScreenshots(t);
  await cancelStop(t, stop);
  const position = await fillLimit(t, limit);
  await partialCloseAndTrail(t, position);
}

async function placeLimit(t) {
  const { page, chart } = t;
  step('orders: a buy limit below the ask is previewed, placed, listed under Pending and drawn on the chart');
  const ticket = page.getByRole('form', { name: 'Order ticket' });
  await ticket.getByLabel('Stop-loss').fill('');
  await ticket.getByLabel('Take-profit').fill('');
  await ticket.getByRole('button', { name: 'Limit', exact: true }).click();
  // Above the ask (64,951.00) a buy limit would fill at once: the ticket says so and will not send it.
  await ticket.getByLabel('Order price').fill('65000.00');
  await until('the wrong-side message', async () => (await ticket.getByRole('alert').textContent()).includes('A buy limit must be below the ask'));
  assert.equal(await ticket.getByRole('button', { name: /^Place buy limit/ }).isDisabled(), true);
  await ticket.getByLabel('Order price').fill('64800.00');
  // 0.01 BTC at 64,800.00 with 1:10: margin 64.80.
  await until('the pending preview', async () => {
    const text = await ticket.textContent();
    return text.includes('ask ≤ 64,800.00') && text.includes('64.80 USD');
  });
  const before = await page.getByRole('status').allTextContents();
  await ticket.getByRole('button', { name: /^Place buy limit 0\.0100 BTC at 64,800\.00$/ }).click();
  const id = await newToastNumber(page, 'the placed toast', /Order #(\d+) placed/g, before);
  await page.getByRole('tab', { name: /^Pending/ }).click();
  const row = orderRow(page, id);
  await row.waitFor();
  const text = await row.textContent();
  assert.ok(text.includes('buy limit') && text.includes('64,800.00') && text.includes('GTC'), `the pending row: ${text}`);
  await until('the order line on the chart', async () => (await chart.getAttribute('aria-label')).includes(`#${id} buy limit 64,800.00`));
  return id;
}

async function placeAndModifyStop(t) {
  const { page } = t;
  step('orders: a sell stop with an expiry, then its price modified from the Pending tab');
  const ticket = page.getByRole('form', { name: 'Order ticket' });
  await ticket.getByRole('button', { name: 'Sell', exact: true }).click();
  await ticket.getByRole('button', { name: 'Stop', exact: true }).click();
  await ticket.getByLabel('Order price').fill('64000.00');
  await ticket.getByLabel('Expiry').fill(tomorrow());
  const before = await page.getByRole('status').allTextContents();
  await ticket.getByRole('button', { name: /^Place sell stop 0\.0100 BTC at 64,000\.00$/ }).click();
  const id = await newToastNumber(page, 'the second placed toast', /Order #(\d+) placed/g, before);
  const row = orderRow(page, id);
  await row.waitFor();
  assert.ok(!(await row.textContent()).includes('GTC'), 'the stop order shows its expiry');
  await page.getByRole('button', { name: `Modify order ${id}`, exact: true }).click();
  const form = page.getByRole('form', { name: `Modify order ${id}` });
  await form.getByLabel('Price', { exact: true }).fill('64100.00');
  await form.getByRole('button', { name: 'Save' }).click();
  await until('the modify toast', async () => (await toast(page, `Order #${id}: price 64,100.00`).count()) > 0);
  await until('the new price in the list', async () => (await orderRow(page, id).textContent()).includes('64,100.00'));
  assert.ok(!(await orderRow(page, id).textContent()).includes('GTC'), 'the expiry stays after a price change');
  // Back to a market buy, as the rest of the visit expects.
  await ticket.getByRole('button', { name: 'Market', exact: true }).click();
  await ticket.getByRole('button', { name: 'Buy', exact: true }).click();
  return id;
}

async function pendingScreenshots(t) {
  const { browser, platform, artifacts, errors, email, password, page } = t;
  step('orders: desktop and phone screenshots of the Pending tab');
  await dismissToasts(page);
  await noHorizontalOverflow(page, 'desktop pending');
  await page.screenshot({ path: path.join(artifacts, 'desktop-pending.png') });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const mobile = await phone.newPage();
  watch(mobile, 'phone orders', errors);
  await mobile.goto(platform.web);
  await mobile.getByLabel('Email').fill(email);
  await mobile.getByLabel('Password').fill(password);
  await mobile.getByRole('button', { name: 'Sign in' }).click();
  await mobile.getByRole('tab', { name: 'Positions', exact: true }).click();
  await mobile.getByRole('tab', { name: /^Pending \(2\)$/ }).click();
  await until('two pending cards', async () => (await mobile.getByRole('button', { name: /^Cancel order/ }).count()) === 2);
  await noHorizontalOverflow(mobile, 'phone pending');
  await mobile.screenshot({ path: path.join(artifacts, 'phone-pending.png') });
  await mobile.getByRole('tab', { name: 'Trade', exact: true }).click();
  await mobile.getByRole('button', { name: 'Limit', exact: true }).click();
  await noHorizontalOverflow(mobile, 'phone limit ticket');
  await mobile.screenshot({ path: path.join(artifacts, 'phone-ticket-limit.png') });
  await phone.close();
}

async function cancelStop(t, id) {
  const { page } = t;
  step('orders: cancel the stop order');
  await page.getByRole('button', { name: `Cancel order ${id}`, exact: true }).click();
  await until('the cancel toast', async () => (await toast(page, `Order #${id} cancelled`).count()) > 0);
  await until('the order gone from Pending', async () => (await orderRow(page, id).count()) === 0);
}

async function fillLimit(t, id) {
  const { page, binance, chart } = t;
  step('orders: the ask reaches the limit price, the order fills and the position opens');
  const before = await page.getByRole('status').allTextContents();
  binance.set('BTC', '64790.00', '64791.00');
  const position = await newToastNumber(page, 'the filled toast', new RegExp(`Order #${id} \\(buy limit 0\\.0100 BTC at 64,800\\.00\\) filled: position #(\\d+) opened at 64,791\\.00`, 'g'), before);
  await until('Pending empty', async () => (await page.getByText('No pending orders.').count()) === 1);
  await until('the order line gone', async () => !(await chart.getAttribute('aria-label')).includes(`#${id} buy limit`));
  await page.getByRole('button', { name: 'Show', exact: true }).click();
  const history = page.getByRole('region', { name: 'Order history' });
  await until('the fill and the cancel in the order history', async () => {
    await history.getByRole('button', { name: 'Refresh' }).click();
    await history.getByRole('row').nth(1).waitFor({ timeout: 2000 }).catch(() => {});
    const text = await history.textContent();
    return text.includes(`Filled: position #${position}`) && text.includes('Cancelled');
  });
  await page.getByRole('tab', { name: /^Open/ }).click();
  const row = positionRow(page, position);
  await row.waitFor();
  assert.ok((await row.textContent()).includes('64,791.00'), 'the position opened at the ask that reached the limit');
  return position;
}

async function partialCloseAndTrail(t, id) {
  const { page, binance, artifacts } = t;
  step('orders: close part of the position, then give it a trailing stop that follows the bid');
  await page.getByRole('button', { name: `Close part of position ${id}`, exact: true }).click();
  const form = page.getByRole('form', { name: `Close part of position ${id}` });
  await form.getByLabel('Quantity to close').fill('0.0040');
  await form.getByRole('button', { name: 'Close part' }).click();
  await until('the partial close toast', async () => (await toast(page, `Closed 0.0040 BTC of position #${id}; 0.0060 stays open`).count()) > 0);
  await until('the remaining quantity', async () => (await positionRow(page, id).textContent()).includes('0.0060'));

  await page.getByRole('button', { name: `Modify SL/TP of position ${id}`, exact: true }).click();
  const edit = page.getByRole('form', { name: `Modify position ${id}` });
  await edit.getByLabel('Trailing distance').fill('100.00');
  await edit.getByRole('button', { name: 'Save' }).click();
  await until('the trailing toast', async () => (await toast(page, `Position #${id}: stop-loss none, take-profit none, trailing 100.00`).count()) > 0);
  binance.set('BTC', '64840.00', '64841.00');
  // The stop follows the bid up: 64,840.00 - 100.00.
  await until('the trailed stop-loss', async () => (await positionRow(page, id).textContent()).includes('64,740.00'));
  assert.ok((await positionRow(page, id).textContent()).includes('100.00'), 'the trailing distance in the list');
  await dismissToasts(page);
  await page.screenshot({ path: path.join(artifacts, 'desktop-trailing.png') });
  binance.set('BTC', '64700.00', '64701.00');
  await until('the trailing-stop close toast', async () => (await toast(page, `Trailing stop: position #${id}`).count()) > 0);

  step('orders: Closed lists the partial close and the trailing-stop close of the rest');
  await page.getByRole('tab', { name: 'Closed' }).click();
  const closed = (reason) => page.getByRole('row').filter({ hasText: reason }).filter({ has: page.getByRole('cell', { name: String(id), exact: true }) });
  await until('both closes in history', async () => (await closed('Manual (part)').count()) === 1 && (await closed('Trailing stop').count()) === 1);
  assert.ok((await closed('Manual (part)').textContent()).includes('0.0040'), 'the partial close shows the closed quantity');
  await page.getByRole('tab', { name: /^Open/ }).click();
  binance.set('BTC', '64950.00', '64951.00');
}
