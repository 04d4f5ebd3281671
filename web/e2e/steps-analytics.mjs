// The Performance tab after real trades (issue 13): called from scenario.mjs once the trader
// has closed one position by hand (+0.99) and one by its stop-loss (-2.11).
import assert from 'node:assert/strict';
import path from 'node:path';
import { sleep, step, until } from './scenario.mjs';

/** The figure a card shows, by its label. */
async function figure(page, label) {
  const card = page.getByLabel('Figures').locator('.figure').filter({ has: page.getByText(label, { exact: true }) });
  return (await card.locator('dd').textContent())?.trim();
}

async function expectFigures(page, where, range) {
  // The stop-loss close reaches PostgreSQL a moment after its event: choosing the range again
  // reloads the figures.
  await until(`${where}: the figures of the two closed trades`, async () => {
    if ((await figure(page, 'Trades')) === '2') return true;
    await page.getByRole('button', { name: range, exact: true }).click();
    return false;
  });
  assert.equal(await figure(page, 'Realised PnL'), '-1.12 USD', where);
  assert.equal(await figure(page, 'Win rate'), '50.00%', where);
  assert.equal(await figure(page, 'Profit factor'), '0.47', where);
  assert.equal(await figure(page, 'Largest win'), '+0.99', where);
  assert.equal(await figure(page, 'Largest loss'), '-2.11', where);
  const reasons = page.getByRole('table').filter({ has: page.getByText('By close reason') });
  assert.match(await reasons.getByRole('row').filter({ hasText: 'Stop-loss' }).textContent(), /Stop-loss\s*1\s*-2\.11/);
  assert.match(await reasons.getByRole('row').filter({ hasText: 'Manual' }).textContent(), /Manual\s*1\s*\+0\.99/);
  const chart = page.getByRole('img', { name: /^P&L chart/ });
  await until(`${where}: the P&L chart`, async () => (await chart.getAttribute('aria-label')).endsWith('cumulative -1.12 USD'));
}

export async function analyticsSteps(t) {
  const { page, artifacts, browser, platform, email, password, errors } = t;
  step('the Performance tab shows the figures of the closed trades');
  await page.getByRole('tab', { name: 'Performance' }).click();
  await expectFigures(page, 'desktop 30D', '30D');
  for (const range of ['7D', 'All', '90D']) {
    await page.getByRole('button', { name: range, exact: true }).click();
    await until(`range ${range} selected`, async () =>
      (await page.getByRole('button', { name: range, exact: true }).getAttribute('aria-pressed')) === 'true');
    await expectFigures(page, `desktop ${range}`, range);
  }
  const days = Number((await page.getByRole('img', { name: /^P&L chart/ }).getAttribute('aria-label')).match(/(\d+) days/)?.[1]);
  assert.equal(days, 90, 'the 90D chart has a bar slot for every day');
  const dismiss = page.getByRole('button', { name: 'Dismiss' });
  while ((await dismiss.count()) > 0) await dismiss.first().click();
  await sleep(500); // the chart's first paint
  await page.screenshot({ path: path.join(artifacts, 'desktop-performance.png') });

  step('the Performance tab on a phone');
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const mobile = await phone.newPage();
  mobile.on('console', (m) => m.type() === 'error' && errors.push(`phone performance: ${m.text()}`));
  mobile.on('pageerror', (e) => errors.push(`phone performance: ${e.message}`));
  await mobile.goto(platform.web);
  await mobile.getByLabel('Email').fill(email);
  await mobile.getByLabel('Password').fill(password);
  await mobile.getByRole('button', { name: 'Sign in' }).click();
  await mobile.getByRole('tab', { name: 'Performance' }).click();
  await expectFigures(mobile, 'phone 30D', '30D');
  const { scroll, client } = await mobile.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
  }));
  assert.ok(scroll <= client, `phone performance: the page scrolls sideways (${scroll} > ${client})`);
  await sleep(500);
  await mobile.screenshot({ path: path.join(artifacts, 'phone-performance.png'), fullPage: true });
  await phone.close();

  await page.getByRole('tab', { name: 'Trading' }).click();
  await page.getByRole('form', { name: 'Order ticket' }).waitFor({ state: 'visible' });
}
