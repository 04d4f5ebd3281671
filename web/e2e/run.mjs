// The browser test: the real platform (isolated, see platform.mjs) with prices from a local
// Binance stand-in, driven in headless Chromium like a trader would, by roles and visible text.
// Any console error fails it; screenshots go to e2e/artifacts/.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startBinance } from './binance.mjs';
import { startPlatform } from './platform.mjs';
import { scenario } from './scenario.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const artifacts = path.join(here, 'artifacts');
mkdirSync(artifacts, { recursive: true });
const bin = path.resolve(process.env.EXNESS_LOCAL_BIN ?? path.join(here, '../../target/debug/exness-local'));
const webDir = path.resolve(here, '../dist');
const verbose = process.env.E2E_VERBOSE === '1';
const runnerLog = [];

const binance = await startBinance({
  BTC: { bid: '65000.00', ask: '65001.00' },
  ETH: { bid: '3200.00', ask: '3200.50' },
  SOL: { bid: '150.00', ask: '150.05' },
});
let platform;
let browser;
let failed = false;
try {
  platform = await startPlatform({
    bin,
    webDir,
    binanceUrl: binance.url,
    log: (line) => {
      runnerLog.push(line);
      if (verbose) console.log(`  runner | ${line}`);
    },
  });
  console.log(`platform: api ${platform.api}, page ${platform.web}, reference ${platform.docs}`);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await scenario({ browser, platform, binance, artifacts });
  console.log('e2e: all steps passed');
} catch (e) {
  failed = true;
  console.error(`e2e FAILED: ${e?.stack ?? e}`);
  if (!verbose) console.error(`last runner log lines:\n${runnerLog.slice(-40).join('\n')}`);
} finally {
  await browser?.close().catch(() => {});
  await platform?.stop().catch((e) => console.error(`cleanup: ${e}`));
  await binance.close().catch(() => {});
}
process.exit(failed ? 1 : 0);
