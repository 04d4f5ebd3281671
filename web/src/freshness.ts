/**
 * Whether a quote on screen can be traded on: the engine refuses market opens and closes of an
 * asset whose last price is `ENGINE_PRICE_STALE_AFTER_MS` old (`price_stale`, default 30 s), and
 * never trades on simulated prices outside local mode. The page marks such a quote so a trader
 * sees it before the refusal. Age is measured from when this page received the asset's last
 * quote (the browser's clock against itself, so a skewed clock cannot mark live prices); the
 * feed re-sends an unchanged quote every second, so a live quiet market never goes silent.
 */

/** The engine's default `ENGINE_PRICE_STALE_AFTER_MS`; keep the two in step. */
export const PRICE_STALE_AFTER_MS = 30_000;

export type QuoteFlag = 'stale' | 'simulated' | null;

/**
 * The marker of a quote received at `receivedAt` (ms, the page's clock) when it is `now`:
 * `stale` from `PRICE_STALE_AFTER_MS` on (the engine's boundary: refused at the limit),
 * else `simulated` for a quote of the simulated feed, else none.
 */
export function quoteFlag(now: number, receivedAt: number | undefined, simulated: boolean): QuoteFlag {
  if (receivedAt === undefined) return null;
  if (now - receivedAt >= PRICE_STALE_AFTER_MS) return 'stale';
  return simulated ? 'simulated' : null;
}

/** What each marker tells a trader (its title). */
export const FLAG_TITLES: Record<'stale' | 'simulated', string> = {
  stale: 'No new price for 30 s or more: market orders and closes are refused until prices flow again',
  simulated: 'This price comes from a simulated random walk, not from Binance',
};
