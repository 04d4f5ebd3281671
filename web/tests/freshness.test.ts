// The instruments' markers: a quote is stale exactly when the engine would refuse to trade on
// it (its age at or past the limit), and simulated quotes are labelled.
import { describe, expect, it } from 'vitest';
import { PRICE_STALE_AFTER_MS, quoteFlag } from '../src/freshness';

describe('a quote on screen', () => {
  const at = 1_795_612_455_678;
  it.each<[string, number, boolean, ReturnType<typeof quoteFlag>]>([
    ['just received', 0, false, null],
    ['one ms before the limit', PRICE_STALE_AFTER_MS - 1, false, null],
    ['at the limit', PRICE_STALE_AFTER_MS, false, 'stale'],
    ['long silent', 10 * PRICE_STALE_AFTER_MS, false, 'stale'],
    ['simulated and live', 5, true, 'simulated'],
    ['simulated and silent', PRICE_STALE_AFTER_MS, true, 'stale'],
  ])('%s', (_, age, simulated, flag) => {
    expect(quoteFlag(at + age, at, simulated)).toBe(flag);
  });

  it('has no marker before any quote arrived', () => {
    expect(quoteFlag(at, undefined, true)).toBeNull();
  });

  it('uses the engine default limit of 30 s', () => {
    expect(PRICE_STALE_AFTER_MS).toBe(30_000);
  });
});
