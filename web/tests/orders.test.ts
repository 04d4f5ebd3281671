// The page's checks for pending orders, partial closes and trailing stops (issue 10's rules),
// so what the ticket and the forms refuse is what the engine would refuse.
import { describe, expect, it } from 'vitest';
import type { Side } from '../src/money';
import {
  expiryError,
  expiryInputValue,
  halfQuantity,
  orderLevelError,
  orderPriceError,
  type OrderType,
  parseExpiry,
  suggestedOrderPrice,
  partialCloseError,
  remainingQuantity,
  trailedStop,
  trailingDistanceError,
  triggerCondition,
} from '../src/order-rules';
import { orderNotice } from '../src/views/order-events';
import { outcome } from '../src/views/order-history';
import type { EngineEvent } from '../src/ws';

describe('a pending price sits on its side of the market (bid 64999.50, ask 65000.50)', () => {
  const bid = '64999.50';
  const ask = '65000.50';
  it.each<[Side, OrderType, string, boolean]>([
    ['buy', 'limit', '65000.49', true], // below the ask
    ['buy', 'limit', '65000.50', false], // at the ask: would fill now
    ['buy', 'stop', '65000.51', true], // above the ask
    ['buy', 'stop', '65000.50', false],
    ['sell', 'limit', '64999.51', true], // above the bid
    ['sell', 'limit', '64999.50', false],
    ['sell', 'stop', '64999.49', true], // below the bid
    ['sell', 'stop', '64999.50', false],
    ['buy', 'limit', '64000.001', false], // too many decimals
    ['buy', 'limit', '64000.100', true], // trailing zeros are fine
    ['buy', 'limit', '0', false],
    ['buy', 'limit', 'abc', false],
  ])('%s %s at %s', (side, type, price, ok) => {
    const error = orderPriceError(side, type, price, bid, ask, 2);
    if (ok) expect(error).toBeNull();
    else expect(error).not.toBeNull();
  });
  it('says which quote and which way', () => {
    expect(orderPriceError('buy', 'limit', '65001.00', bid, ask, 2)).toBe('A buy limit must be below the ask (65000.50).');
    expect(orderPriceError('sell', 'stop', '65001.00', bid, ask, 2)).toBe('A sell stop must be below the bid (64999.50).');
    expect(triggerCondition('buy', 'limit')).toBe('ask ≤');
    expect(triggerCondition('sell', 'limit')).toBe('bid ≥');
    expect(triggerCondition('buy', 'stop')).toBe('ask ≥');
    expect(triggerCondition('sell', 'stop')).toBe('bid ≤');
  });
});

describe('a first price for a pending order is valid as it stands', () => {
  it.each<[Side, OrderType, string]>([
    ['buy', 'limit', '64935.49'], // 65000.50 * 0.999 = 64935.4995, down
    ['buy', 'stop', '65065.51'], // 65000.50 * 1.001 = 65065.5005, up
    ['sell', 'limit', '65064.50'], // 64999.50 * 1.001 = 65064.4995, up
    ['sell', 'stop', '64934.50'], // 64999.50 * 0.999 = 64934.5005, down
  ])('%s %s -> %s', (side, type, expected) => {
    const price = suggestedOrderPrice(side, type, '64999.50', '65000.50', 2);
    expect(price).toBe(expected);
    expect(orderPriceError(side, type, price, '64999.50', '65000.50', 2)).toBeNull();
  });
});

describe("a pending order's SL/TP are checked against its own price (64800.00)", () => {
  it.each<['stopLoss' | 'takeProfit', Side, string, boolean]>([
    ['stopLoss', 'buy', '64799.99', true],
    ['stopLoss', 'buy', '64800.00', false],
    ['takeProfit', 'buy', '64800.01', true],
    ['takeProfit', 'buy', '64800.00', false],
    ['stopLoss', 'sell', '64800.01', true],
    ['stopLoss', 'sell', '64799.99', false],
    ['takeProfit', 'sell', '64799.99', true],
    ['takeProfit', 'sell', '64800.01', false],
    ['stopLoss', 'buy', '64000.005', false],
  ])('%s of a %s at %s', (kind, side, level, ok) => {
    const error = orderLevelError(kind, side, level, '64800.00', 2);
    if (ok) expect(error).toBeNull();
    else expect(error).not.toBeNull();
  });
});

describe('a partial close takes part of a position on the step, leaving the minimum', () => {
  const btc = { quantityStep: '0.0001', minQuantity: '0.0002', maxQuantity: '100' };
  it.each([
    ['0.0050', null],
    ['0.0098', null], // 0.0002 stays: the minimum
    ['0.0099', 'must stay open'], // 0.0001 would stay
    ['0.0100', 'less than the whole'],
    ['0.0200', 'less than the whole'],
    ['0.00005', 'multiple of 0.0001'],
    ['0', 'positive'],
    ['x', 'positive'],
  ])('%s of 0.0100', (q, problem) => {
    const error = partialCloseError(q, '0.0100', btc);
    if (problem === null) expect(error).toBeNull();
    else expect(error).toContain(problem);
  });
  it('shows what stays and suggests half', () => {
    expect(remainingQuantity('0.0100', '0.0035', btc)).toBe('0.0065');
    expect(halfQuantity('0.0100', btc)).toBe('0.0050');
    expect(halfQuantity('0.0101', btc)).toBe('0.0050'); // down to the step
    expect(halfQuantity('0.0003', btc)).toBe('0.0001'); // 0.0002 stays: the minimum
    expect(halfQuantity('0.0002', btc)).toBeNull(); // nothing can be closed and leave the minimum
  });
});

describe('a trailing stop moves only in the trader’s favour', () => {
  it.each<[Side, string | null, string, string, string, string]>([
    ['buy', null, '65000.00', '65001.00', '100.00', '64900'],
    ['buy', '64950.00', '65000.00', '65001.00', '100.00', '64950'], // never back down
    ['buy', '64850.00', '65000.00', '65001.00', '100.00', '64900'],
    ['sell', null, '65000.00', '65001.00', '100.00', '65101'],
    ['sell', '65050.00', '65000.00', '65001.00', '100.00', '65050'], // never back up
    ['sell', '65200.00', '65000.00', '65001.00', '100.00', '65101'],
  ])('%s with SL %s at %s/%s, distance %s -> %s', (side, sl, bid, ask, distance, expected) => {
    expect(trailedStop(side, sl, bid, ask, distance)).toBe(expected);
  });
  it('takes a positive distance on the price grid', () => {
    expect(trailingDistanceError('100.00', 2)).toBeNull();
    expect(trailingDistanceError('0.5', 2)).toBeNull();
    expect(trailingDistanceError('0.005', 2)).toContain('at most 2 decimals');
    expect(trailingDistanceError('0', 2)).toContain('positive');
    expect(trailingDistanceError('-1', 2)).toContain('positive');
  });
});

describe('an expiry is optional and in the future', () => {
  it('reads the datetime-local field', () => {
    expect(parseExpiry('')).toBeNull();
    expect(Number.isNaN(parseExpiry('soon'))).toBe(true);
    const ms = parseExpiry('2030-01-02T03:04');
    expect(ms).toBe(new Date(2030, 0, 2, 3, 4).getTime());
    expect(expiryInputValue(ms)).toBe('2030-01-02T03:04');
    expect(expiryInputValue(null)).toBe('');
  });
  it('refuses a past or invalid one', () => {
    expect(expiryError(null, 1000)).toBeNull();
    expect(expiryError(1001, 1000)).toBeNull();
    expect(expiryError(1000, 1000)).toContain('future');
    expect(expiryError(Number.NaN, 1000)).toContain('not a date');
  });
});

describe('order events tell the trader what happened without them', () => {
  const order = { id: 7, asset: 'BTC', side: 'buy' as const, order_type: 'limit' as const, price: '64800', quantity: '0.0100', expires_at: null };
  const decimals = () => 2;
  it('a fill names the position and its price', () => {
    const e: EngineEvent = {
      type: 'order_filled', order,
      position: { id: 12, asset: 'BTC', side: 'buy', quantity: '0.0100', open_price: '64791', stop_loss: null, take_profit: null, liquidation_price: null },
    };
    expect(orderNotice(e, decimals)).toEqual({
      text: 'Order #7 (buy limit 0.0100 BTC at 64,800.00) filled: position #12 opened at 64,791.00', kind: 'success',
    });
  });
  it('an expiry warns, a margin cancel is an error, the trader’s own cancel says nothing', () => {
    expect(orderNotice({ type: 'order_cancelled', order, reason: 'expired' }, decimals)?.kind).toBe('warning');
    expect(orderNotice({ type: 'order_cancelled', order, reason: 'insufficient_margin' }, decimals)?.text).toContain('free margin');
    expect(orderNotice({ type: 'order_cancelled', order, reason: 'user' }, decimals)).toBeNull();
    expect(orderNotice({ type: 'order_placed', order }, decimals)).toBeNull();
    expect(orderNotice({ type: 'position_opened' }, decimals)).toBeNull();
  });
});

describe('the order history names what became of each order', () => {
  it.each([
    [{ status: 'filled' as const, positionId: 12, cancelReason: null }, 'Filled: position #12'],
    [{ status: 'cancelled' as const, positionId: null, cancelReason: 'user' as const }, 'Cancelled'],
    [{ status: 'cancelled' as const, positionId: null, cancelReason: 'expired' as const }, 'Expired'],
    [{ status: 'cancelled' as const, positionId: null, cancelReason: 'insufficient_margin' as const }, 'Cancelled: no margin'],
  ])('%o -> %s', (o, expected) => {
    expect(outcome(o)).toBe(expected);
  });
});
