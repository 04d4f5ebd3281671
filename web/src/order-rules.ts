/**
 * The checks and figures the page shows for pending orders, partial closes and trailing stops
 * before the engine answers (the rules of engine/src/trading.rs, issue 10): which side of the
 * market a limit or stop price must be on, SL/TP against the order price, the quantity a
 * partial close may take, a trailing distance, an expiry. Prices stay decimal strings and go
 * through big.js, never floats.
 */
import Big from 'big.js';
import { decimalsOf, parseDecimal, type QuantityRules, type Side } from './money';

export type OrderType = 'limit' | 'stop';
/** What the ticket sends: a market open, or a pending order of one of the two types. */
export type TicketType = 'market' | OrderType;

function tooPrecise(text: string, priceDecimals: number): boolean {
  const fraction = text.trim().split('.')[1] ?? '';
  return fraction.replace(/0+$/, '').length > priceDecimals;
}

/** "a positive price with at most `d` decimals", or why not. */
function priceProblem(name: string, text: string, priceDecimals: number): string | null {
  const v = parseDecimal(text);
  if (v === null || !v.gt(0)) return `${name} must be a positive price.`;
  if (tooPrecise(text, priceDecimals)) return `${name} has at most ${priceDecimals} decimals.`;
  return null;
}

/** The price a pending order watches: the ask for a buy, the bid for a sell. */
export function triggerPrice(side: Side, bid: string, ask: string): string {
  return side === 'buy' ? ask : bid;
}

/**
 * Whether the order waits for the market to come down to its price (a buy limit, a sell stop)
 * rather than up (a sell limit, a buy stop).
 */
function waitsBelow(side: Side, type: OrderType): boolean {
  return (side === 'buy') === (type === 'limit');
}

/**
 * Null when the engine would place the order: a buy limit below the ask, a buy stop above it,
 * a sell limit above the bid, a sell stop below it (an order that would fill at once is
 * refused: use a market order). Else the reason.
 */
export function orderPriceError(
  side: Side,
  type: OrderType,
  price: string,
  bid: string,
  ask: string,
  priceDecimals: number,
): string | null {
  const problem = priceProblem('The order price', price, priceDecimals);
  if (problem) return problem;
  const market = triggerPrice(side, bid, ask);
  const below = waitsBelow(side, type);
  const p = new Big(price.trim());
  if (below ? p.lt(market) : p.gt(market)) return null;
  const where = below ? 'below' : 'above';
  const quote = side === 'buy' ? 'ask' : 'bid';
  return `A ${side} ${type} must be ${where} the ${quote} (${market}).`;
}

/**
 * A first price for a new pending order: 0.1% from the market on the side the order waits
 * on, on the price grid (rounded away from the market, so it is valid as it stands).
 */
export function suggestedOrderPrice(side: Side, type: OrderType, bid: string, ask: string, priceDecimals: number): string {
  const market = new Big(triggerPrice(side, bid, ask));
  const below = waitsBelow(side, type);
  const moved = market.times(below ? '0.999' : '1.001');
  // big.js rounding: 0 towards zero (down for a positive price), 3 away from zero (up).
  return moved.round(priceDecimals, below ? 0 : 3).toFixed(priceDecimals);
}

/** "ask ≤ 64,800.00": when the order triggers, for the preview. */
export function triggerCondition(side: Side, type: OrderType): string {
  const quote = side === 'buy' ? 'ask' : 'bid';
  return `${quote} ${waitsBelow(side, type) ? '≤' : '≥'}`;
}

/**
 * Null when the engine would accept a pending order's SL/TP: checked against the order's
 * price, not the market (a buy's stop-loss below it and take-profit above it; a sell's the
 * reverse). Else the reason.
 */
export function orderLevelError(
  kind: 'stopLoss' | 'takeProfit',
  side: Side,
  level: string,
  orderPrice: string,
  priceDecimals: number,
): string | null {
  const name = kind === 'stopLoss' ? 'Stop-loss' : 'Take-profit';
  const problem = priceProblem(name, level, priceDecimals);
  if (problem) return problem;
  const price = parseDecimal(orderPrice);
  if (price === null) return null; // the order price's own check speaks
  const below = (kind === 'stopLoss') === (side === 'buy');
  const l = new Big(level.trim());
  if (below ? l.lt(price) : l.gt(price)) return null;
  return `${name} of a ${side} order must be ${below ? 'below' : 'above'} its price (${orderPrice.trim()}).`;
}

/** Null for a positive distance with at most the asset's price decimals, else the reason. */
export function trailingDistanceError(distance: string, priceDecimals: number): string | null {
  return priceProblem('The trailing distance', distance, priceDecimals);
}

/**
 * Where a trailing stop puts the stop-loss now: a buy's `max(stopLoss, bid - distance)`, a
 * sell's `min(stopLoss, ask + distance)` (it only moves in the trader's favour).
 */
export function trailedStop(side: Side, stopLoss: string | null, bid: string, ask: string, distance: string): string {
  const trailed = side === 'buy' ? new Big(bid).minus(distance) : new Big(ask).plus(distance);
  if (stopLoss === null) return trailed.toString();
  const current = new Big(stopLoss);
  const better = side === 'buy' ? trailed.gt(current) : trailed.lt(current);
  return (better ? trailed : current).toString();
}

/**
 * Null when the engine would close `quantity` of a position of `positionQuantity`: a positive
 * multiple of the step, less than the position (closing all of it is the Close button),
 * leaving at least the asset's minimum. Else the reason.
 */
export function partialCloseError(quantity: string, positionQuantity: string, rules: QuantityRules): string | null {
  const q = parseDecimal(quantity);
  if (q === null || !q.gt(0)) return 'Enter a positive quantity to close.';
  if (!q.mod(rules.quantityStep).eq(0)) return `Quantity must be a multiple of ${rules.quantityStep}.`;
  if (!q.lt(positionQuantity)) return `Close less than the whole position (${positionQuantity}); use Close for all of it.`;
  const left = new Big(positionQuantity).minus(q);
  if (left.lt(rules.minQuantity)) return `At least ${rules.minQuantity} must stay open.`;
  return null;
}

/** What stays open after a partial close, with the step's decimals. */
export function remainingQuantity(positionQuantity: string, closed: string, rules: QuantityRules): string {
  return new Big(positionQuantity).minus(closed).toFixed(decimalsOf(rules.quantityStep));
}

/** Half of a position, on the step, for the partial-close form's first value (null when it cannot be split). */
export function halfQuantity(positionQuantity: string, rules: QuantityRules): string | null {
  const step = new Big(rules.quantityStep);
  const half = new Big(positionQuantity).div(2).div(step).round(0, 0).times(step);
  const text = half.toFixed(decimalsOf(rules.quantityStep));
  return partialCloseError(text, positionQuantity, rules) === null ? text : null;
}

/**
 * The ms since the epoch of a `datetime-local` input's value (local time); null when empty
 * (good till cancelled), NaN when it is not a date.
 */
export function parseExpiry(value: string): number | null {
  if (value.trim() === '') return null;
  return new Date(value).getTime();
}

/** The `datetime-local` value of an expiry (local time, minutes), '' for none. */
export function expiryInputValue(ms: number | null): string {
  if (ms === null) return '';
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Null for no expiry or one in the future, else the reason. */
export function expiryError(ms: number | null, now: number): string | null {
  if (ms === null) return null;
  if (Number.isNaN(ms)) return 'The expiry is not a date.';
  if (ms <= now) return 'The expiry must be in the future.';
  return null;
}

/** "Good till cancelled" or the local date and time. */
export function formatExpiry(ms: number | null): string {
  return ms === null ? 'Good till cancelled' : new Date(ms).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
}
