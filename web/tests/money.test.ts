// The page's trading arithmetic against the numbers of the engine's own table tests
// (engine/tests/rules.rs), so the preview a trader sees is what the engine will do.
import { describe, expect, it } from 'vitest';
import {
  formatDecimal,
  formatMoney,
  formatSigned,
  levelError,
  liquidationPrice,
  margin,
  marginLevel,
  pnl,
  quantityError,
  spread,
  stepQuantity,
  type Side,
} from '../src/money';

describe('margin is quantity * fill / leverage rounded up to the cent', () => {
  it.each([
    ['0.01', '65000.50', 10, '65.01'],
    ['0.0007', '65000.50', 3, '15.17'],
    ['1', '3000.25', 100, '30.01'],
    ['0.0003', '65000.50', 7, '2.79'],
    ['2', '150.00', 1, '300.00'],
    ['2', '65000.50', 10, '13000.10'],
  ])('%s at %s x%i = %s', (q, p, lev, expected) => {
    expect(margin(q, p, lev)).toBe(expected);
  });
});

describe('liquidation price: exact level, shown rounded away from the open price', () => {
  it.each<[Side, string, string, string, string | null]>([
    ['buy', '65000.50', '65.01', '0.01', '58499.50'],
    ['sell', '65000.50', '65.01', '0.01', '71501.50'],
    ['buy', '65000.50', '15.17', '0.0007', '43329.07'], // 43329.0714.. down for a buy
    ['sell', '64999.50', '15.17', '0.0007', '86670.93'], // 86670.9285.. up for a sell
    ['buy', '3000.25', '30.01', '1', '2970.24'],
    ['buy', '150.00', '300.00', '2', null], // 1x buy: level 0, cannot be liquidated
  ])('%s from %s, margin %s, quantity %s -> %s', (side, open, m, q, expected) => {
    expect(liquidationPrice(side, open, m, q, 2)).toBe(expected);
  });
});

describe('PnL is rounded half-even to the cent', () => {
  it.each<[Side, string, string, string, string]>([
    ['buy', '3000.00', '3000.01', '0.5', '0.00'],
    ['buy', '3000.00', '3000.03', '0.5', '0.02'],
    ['buy', '3000.00', '3000.05', '0.5', '0.02'],
    ['sell', '3000.00', '2999.95', '0.5', '0.02'],
    ['sell', '3000.00', '3000.07', '0.5', '-0.04'],
    ['buy', '65000.50', '66000.00', '0.01', '10.00'],
    ['sell', '64999.50', '64000.50', '0.01', '9.99'],
    ['buy', '65000.50', '64000.00', '0.01', '-10.00'],
  ])('%s %s -> %s x %s = %s', (side, open, close, q, expected) => {
    expect(pnl(side, open, close, q)).toBe(expected);
  });
});

describe('margin level and spread', () => {
  it('is equity / used margin * 100, none without margin', () => {
    expect(marginLevel('10000.00', '0.00')).toBeNull();
    expect(marginLevel('9999.99', '65.01')).toBe('15382.23');
    expect(spread('64999.50', '65000.50', 2)).toBe('1.00');
  });
});

describe('quantity must be a positive multiple of the step within the bounds', () => {
  const btc = { quantityStep: '0.0001', minQuantity: '0.0001', maxQuantity: '100' };
  it.each([
    ['0.01', null],
    ['0.00015', 'multiple of 0.0001'],
    ['0.00001', 'multiple of 0.0001'],
    ['100.0001', 'maximum quantity is 100'],
    ['100', null],
    ['0', 'positive'],
    ['-1', 'positive'],
    ['abc', 'positive'],
  ])('%s', (q, problem) => {
    const error = quantityError(q, btc);
    if (problem === null) expect(error).toBeNull();
    else expect(error).toContain(problem);
  });
  it('steps and clamps', () => {
    expect(stepQuantity('0.01', 1, btc)).toBe('0.0101');
    expect(stepQuantity('0.0001', -1, btc)).toBe('0.0001');
    expect(stepQuantity('100', 1, btc)).toBe('100.0000');
    expect(stepQuantity('0.01005', 1, btc)).toBe('0.0101');
  });
});

describe('SL/TP sit on the engine side of the price (bid 64999.50, ask 65000.50)', () => {
  const bid = '64999.50';
  const ask = '65000.50';
  it.each<['stopLoss' | 'takeProfit', Side, string, boolean]>([
    ['stopLoss', 'buy', '64999.50', false], // not below the bid
    ['stopLoss', 'buy', '64999.49', true],
    ['takeProfit', 'buy', '64999.50', false], // not above the bid
    ['takeProfit', 'buy', '64999.51', true],
    ['stopLoss', 'sell', '65000.50', false], // not above the ask
    ['stopLoss', 'sell', '65000.51', true],
    ['takeProfit', 'sell', '65000.50', false],
    ['takeProfit', 'sell', '65000.49', true],
    ['stopLoss', 'buy', '60000.001', false], // too many decimals
    ['stopLoss', 'buy', '60000.100', true], // trailing zeros are fine
  ])('%s of a %s at %s', (kind, side, level, ok) => {
    const error = levelError(kind, side, level, bid, ask, 2);
    if (ok) expect(error).toBeNull();
    else expect(error).not.toBeNull();
  });
});

describe('formatting keeps the decimal string exact', () => {
  it('groups thousands and pads decimals', () => {
    expect(formatMoney('10000')).toBe('10,000.00');
    expect(formatMoney('0.1')).toBe('0.10');
    expect(formatMoney('-1234567.891')).toBe('-1,234,567.89');
    expect(formatDecimal('65000.5', 2)).toBe('65,000.50');
    expect(formatDecimal('0.30000000000000004', 2)).toBe('0.30');
    expect(formatDecimal('12345678901234567890.12', 2)).toBe('12,345,678,901,234,567,890.12');
    expect(formatSigned('9.99')).toBe('+9.99');
    expect(formatSigned('-0.001')).toBe('0.00');
    expect(formatSigned('0')).toBe('0.00');
  });
});
