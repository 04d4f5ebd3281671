/**
 * The trading arithmetic the page shows before the engine answers: margin, liquidation price,
 * PnL, margin level, and the checks the engine makes on quantities and SL/TP levels. Money and
 * prices stay decimal strings; every computation goes through big.js, never floats. The rules
 * mirror engine/src/trading.rs and engine/src/math.rs (tests use the engine's own table).
 */
import Big from 'big.js';

export type Side = 'buy' | 'sell';

/** big.js rounding modes. */
const DOWN = 0; // towards zero
const HALF_EVEN = 2;
const UP = 3; // away from zero

/** Cents: every amount of money has two decimals. */
export const MONEY_DECIMALS = 2;

function positive(b: Big): boolean {
  return b.gt(0);
}

/** Parses a decimal string the way the API writes them; null for anything else. */
export function parseDecimal(text: string | null | undefined): Big | null {
  if (text == null) return null;
  const t = text.trim();
  if (!/^-?\d+(\.\d+)?$/.test(t)) return null;
  return new Big(t);
}

/** `quantity * price / leverage`, rounded up to the cent. */
export function margin(quantity: string, price: string, leverage: number): string {
  return new Big(quantity).times(price).div(leverage).round(MONEY_DECIMALS, UP).toFixed(MONEY_DECIMALS);
}

/**
 * The liquidation price: the exact level `open - margin/quantity` for a buy, `open +
 * margin/quantity` for a sell, shown on the price grid rounded away from the open price (down
 * for a buy, up for a sell). Null when a buy's level is at or below zero (1x cannot be
 * liquidated).
 */
export function liquidationPrice(
  side: Side,
  open: string,
  marginAmount: string,
  quantity: string,
  priceDecimals: number,
): string | null {
  const distance = new Big(marginAmount).div(quantity);
  const exact = side === 'buy' ? new Big(open).minus(distance) : new Big(open).plus(distance);
  if (!positive(exact)) return null;
  // Both levels are positive here, so "down" (towards zero) is down and "up" is up.
  const shown = exact.round(priceDecimals, side === 'buy' ? DOWN : UP);
  return positive(shown) ? shown.toFixed(priceDecimals) : null;
}

/** buy `(close - open) * quantity`, sell `(open - close) * quantity`, half-even to the cent. */
export function pnl(side: Side, open: string, close: string, quantity: string): string {
  const perUnit = side === 'buy' ? new Big(close).minus(open) : new Big(open).minus(close);
  return perUnit.times(quantity).round(MONEY_DECIMALS, HALF_EVEN).toFixed(MONEY_DECIMALS);
}

/** The price a new position fills at now (a buy at the ask, a sell at the bid). */
export function fillPrice(side: Side, bid: string, ask: string): string {
  return side === 'buy' ? ask : bid;
}

/** The price an open position is valued and closed at (a buy at the bid, a sell at the ask). */
export function closeSidePrice(side: Side, bid: string, ask: string): string {
  return side === 'buy' ? bid : ask;
}

export function spread(bid: string, ask: string, priceDecimals: number): string {
  return new Big(ask).minus(bid).toFixed(priceDecimals);
}

/** `equity / usedMargin * 100`, half-even to the cent; null without used margin. */
export function marginLevel(equity: string, usedMargin: string): string | null {
  const used = new Big(usedMargin);
  if (used.eq(0)) return null;
  return new Big(equity).div(used).times(100).round(MONEY_DECIMALS, HALF_EVEN).toFixed(MONEY_DECIMALS);
}

export function sum(values: string[]): string {
  return values.reduce((acc, v) => acc.plus(v), new Big(0)).toFixed(MONEY_DECIMALS);
}

export function add(a: string, b: string): string {
  return new Big(a).plus(b).toFixed(MONEY_DECIMALS);
}

export function subtract(a: string, b: string): string {
  return new Big(a).minus(b).toFixed(MONEY_DECIMALS);
}

/** Signum of a decimal string: -1, 0 or 1. */
export function sign(value: string): number {
  return new Big(value).cmp(0);
}

export interface QuantityRules {
  quantityStep: string;
  minQuantity: string;
  maxQuantity: string;
}

/** Null when the engine would accept the quantity, else why not (as the engine checks it). */
export function quantityError(quantity: string, rules: QuantityRules): string | null {
  const q = parseDecimal(quantity);
  if (q === null || !positive(q)) return 'Enter a positive quantity.';
  if (!q.mod(rules.quantityStep).eq(0)) return `Quantity must be a multiple of ${rules.quantityStep}.`;
  if (q.lt(rules.minQuantity)) return `The minimum quantity is ${rules.minQuantity}.`;
  if (q.gt(rules.maxQuantity)) return `The maximum quantity is ${rules.maxQuantity}.`;
  return null;
}

/** Steps a quantity by `delta` steps, clamped to the bounds. */
export function stepQuantity(quantity: string, delta: number, rules: QuantityRules): string {
  const q = parseDecimal(quantity) ?? new Big(rules.minQuantity);
  const step = new Big(rules.quantityStep);
  const steps = q.div(step).round(0, delta > 0 ? DOWN : UP);
  let next = steps.plus(delta).times(step);
  if (next.lt(rules.minQuantity)) next = new Big(rules.minQuantity);
  if (next.gt(rules.maxQuantity)) next = new Big(rules.maxQuantity);
  return next.toFixed(decimalsOf(rules.quantityStep));
}

export function decimalsOf(text: string): number {
  const dot = text.indexOf('.');
  return dot < 0 ? 0 : text.length - dot - 1;
}

export type LevelKind = 'stopLoss' | 'takeProfit';

/**
 * Null when the engine would accept the level: a buy's stop-loss below the bid and its
 * take-profit above it, a sell's stop-loss above the ask and its take-profit below it, with at
 * most the asset's price decimals. Else the reason.
 */
export function levelError(
  kind: LevelKind,
  side: Side,
  level: string,
  bid: string,
  ask: string,
  priceDecimals: number,
): string | null {
  const name = kind === 'stopLoss' ? 'Stop-loss' : 'Take-profit';
  const l = parseDecimal(level);
  if (l === null || !positive(l)) return `${name} must be a positive price.`;
  const fraction = level.trim().split('.')[1] ?? '';
  if (fraction.replace(/0+$/, '').length > priceDecimals) {
    return `${name} has at most ${priceDecimals} decimals.`;
  }
  const current = side === 'buy' ? bid : ask;
  const below = (kind === 'stopLoss') === (side === 'buy');
  const ok = below ? l.lt(current) : l.gt(current);
  if (ok) return null;
  const where = below ? 'below' : 'above';
  const price = side === 'buy' ? 'bid' : 'ask';
  return `${name} of a ${side} must be ${where} the ${price} (${current}).`;
}

/** "12345.5" -> "12,345.50" with `decimals` places; the sign kept, no float on the way. */
export function formatDecimal(value: string, decimals: number): string {
  const fixed = new Big(value).toFixed(decimals);
  const negative = fixed.startsWith('-');
  const [whole, fraction] = (negative ? fixed.slice(1) : fixed).split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const body = fraction === undefined ? grouped : `${grouped}.${fraction}`;
  return negative && !/^[0.,]+$/.test(body) ? `-${body}` : body;
}

/** Money with two decimals: "10,000.00". */
export function formatMoney(value: string): string {
  return formatDecimal(value, MONEY_DECIMALS);
}

/** PnL with an explicit sign: "+9.99", "-10.00", "0.00". */
export function formatSigned(value: string): string {
  const text = formatMoney(value);
  return sign(value) > 0 ? `+${text}` : text;
}
