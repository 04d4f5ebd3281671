// The price-alert steps of the browser test (called from scenario.mjs): set an alert from the
// form and one by right-clicking the chart, cancel one from the list, move the price through
// the Binance stand-in until the ask is exactly at the level, and see the toast on the desktop
// and on the phone; screenshots alerts-desktop.png and alerts-phone.png.
import assert from 'node:assert/strict';
import path from 'node:path';
import { sleep, step, until } from './scenario.mjs';

const alertItems = (page) => page.getByRole('list', { name: 'Price alerts' }).getByRole('listitem');

export async function alertSteps(t) {
  const { page, phone, binance, artifacts } = t;
  step('price alerts: set from the form and the chart, cancel one, one fires with a toast');
  binance.set('BTC', '64960.00', '64961.00');
  const btc = page.getByRole('button', { name: /^BTC/ });
  await btc.click();
  await until('the BTC quote', async () => (await btc.textContent()).includes('64,960.00'));
  const form = page.getByRole('form', { name: 'Price alert' });
  await form.getByLabel('Alert price').fill('65000.00');
  await until('the direction hint', async () => (await form.textContent()).includes('ask reaches it'));
  await form.getByRole('button', { name: 'Set alert' }).click();
  await until('the alert in the list', async () =>
    (await alertItems(page).allTextContents()).some((x) => x.includes('BTC above 65,000.00') && x.includes('active')));

  // Right-click low on the chart: a "below" alert at that price; then cancel it from the list.
  const chart = page.getByRole('img', { name: /Candlestick chart of BTC/ });
  const box = await chart.boundingBox();
  await page.mouse.click(box.x + box.width * 0.4, box.y + box.height * 0.55, { button: 'right' });
  const menuItem = page.getByRole('menuitem', { name: /^Alert at / });
  const label = await menuItem.textContent();
  await menuItem.click();
  const level = label.replace('Alert at ', '');
  await until('the chart alert in the list', async () =>
    (await alertItems(page).allTextContents()).some((x) => x.includes(`BTC below ${level}`)));
  await page.getByRole('button', { name: `Cancel alert BTC below ${level}` }).click();
  await until('the cancelled alert', async () =>
    (await alertItems(page).allTextContents()).some((x) => x.includes(`BTC below ${level}`) && x.includes('cancelled')));

  // A cent short of the level: the ask at 64,999.99; then exactly at it.
  binance.set('BTC', '64999.00', '64999.99');
  await until('the BTC quote a cent below', async () => (await btc.textContent()).includes('64,999.00'));
  binance.set('BTC', '64999.50', '65000.00');
  const fired = page.getByRole('status').filter({ hasText: 'Alert: BTC above 65,000.00 — the ask reached 65,000.00' });
  await fired.first().waitFor({ timeout: 30_000 });
  await until('the alert listed as fired', async () =>
    (await alertItems(page).allTextContents()).some((x) => x.includes('BTC above 65,000.00') && x.includes('fired at 65,000.00')));
  const shown = await page.getByRole('status').allTextContents();
  assert.equal(shown.join(' ').split('Alert: BTC above').length - 1, 1, 'one toast for one firing');
  // One more, still active, so the screenshot shows its line on the chart.
  await form.getByLabel('Alert price').fill('65300.00');
  await form.getByRole('button', { name: 'Set alert' }).click();
  await until('the second alert in the list', async () =>
    (await alertItems(page).allTextContents()).some((x) => x.includes('BTC above 65,300.00') && x.includes('active')));
  await sleep(500);
  await page.screenshot({ path: path.join(artifacts, 'alerts-desktop.png') });

  // The same trader's phone got it too (its toast, its list on the Trade tab).
  const mobile = phone.pages()[0];
  await mobile.getByRole('status').filter({ hasText: 'Alert: BTC above 65,000.00' }).first().waitFor({ timeout: 30_000 });
  await mobile.getByRole('tab', { name: 'Trade', exact: true }).click();
  await until('the phone list with the fired alert', async () =>
    (await alertItems(mobile).allTextContents()).some((x) => x.includes('fired at 65,000.00')));
  await mobile.getByRole('list', { name: 'Price alerts' }).scrollIntoViewIfNeeded();
  await sleep(300);
  await mobile.screenshot({ path: path.join(artifacts, 'alerts-phone.png') });
}
