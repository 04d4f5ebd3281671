/**
 * The ticket's order-type part: Market / Limit / Stop, and for a pending order its price and
 * optional expiry, the checks the engine makes on them (the price on the right side of the
 * market, SL/TP against the order price, an expiry in the future) and the request to send.
 */
import type { OrderRequest } from '../api/orders';
import { h } from '../dom';
import { formatDecimal, type Side } from '../money';
import {
  expiryError,
  orderLevelError,
  orderPriceError,
  parseExpiry,
  suggestedOrderPrice,
  type TicketType,
  triggerCondition,
} from '../order-rules';

const TYPES: [TicketType, string][] = [['market', 'Market'], ['limit', 'Limit'], ['stop', 'Stop']];

export class OrderFields {
  type: TicketType = 'market';
  readonly price = h('input', { id: 't-price', inputmode: 'decimal', autocomplete: 'off' });
  readonly expiry = h('input', { id: 't-exp', type: 'datetime-local' });
  /** The type switch, then (for a pending order) the price and expiry fields. */
  readonly elements: HTMLElement[];
  private readonly fields: HTMLElement;
  private readonly buttons = new Map<TicketType, HTMLButtonElement>();

  constructor(private readonly onChange: (typeChanged: boolean) => void) {
    const group = h('div', { class: 'order-types', role: 'group', 'aria-label': 'Order type' },
      TYPES.map(([t, label]) => {
        const b = h('button', { type: 'button', class: 'order-type', 'aria-pressed': 'false', onclick: () => this.setType(t) }, label);
        this.buttons.set(t, b);
        return b;
      }));
    this.fields = h('div', { class: 'pending-fields' },
      h('label', { for: 't-price' }, 'Order price'), this.price,
      h('label', { for: 't-exp' }, 'Expiry (optional: none is good till cancelled)'), this.expiry);
    this.elements = [group, this.fields];
    for (const input of [this.price, this.expiry]) input.addEventListener('input', () => this.onChange(false));
    this.setType('market');
  }

  get pending(): boolean {
    return this.type !== 'market';
  }

  setType(t: TicketType): void {
    const changed = t !== this.type;
    this.type = t;
    for (const [k, b] of this.buttons) b.setAttribute('aria-pressed', String(k === t));
    this.fields.hidden = t === 'market';
    this.onChange(changed);
  }

  /** A new asset: no price or expiry carried over from another market. */
  reset(): void {
    this.price.value = '';
    this.expiry.value = '';
  }

  /** Starts an empty price near the market on the side the order waits on, for the trader to move. */
  suggest(side: Side, bid: string, ask: string, decimals: number): void {
    if (this.type !== 'market' && this.price.value.trim() === '') this.price.value = suggestedOrderPrice(side, this.type, bid, ask, decimals);
  }

  /** Why the order price would be refused (null when fine, and for a market order). */
  priceError(side: Side, bid: string, ask: string, decimals: number): string | null {
    if (this.type === 'market') return null;
    return orderPriceError(side, this.type, this.price.value, bid, ask, decimals);
  }

  /** The problems the engine would refuse the pending order for (none for a market order). */
  check(side: Side, bid: string, ask: string, decimals: number, stopLoss: string, takeProfit: string): string[] {
    if (this.type === 'market') return [];
    const out: string[] = [];
    const price = this.price.value;
    const e = this.priceError(side, bid, ask, decimals);
    if (e) out.push(e);
    for (const [kind, level] of [['stopLoss', stopLoss], ['takeProfit', takeProfit]] as const) {
      if (level.trim() === '') continue;
      const le = orderLevelError(kind, side, level, price, decimals);
      if (le) out.push(le);
    }
    const x = expiryError(parseExpiry(this.expiry.value), Date.now());
    if (x) out.push(x);
    return out;
  }

  /** Preview rows of a pending order: its price and when it triggers. */
  preview(side: Side, decimals: number): [string, string][] {
    if (this.type === 'market') return [];
    const at = formatDecimal(this.price.value.trim(), decimals);
    return [['Triggers when', `${triggerCondition(side, this.type)} ${at}`]];
  }

  /** The send button's text. */
  label(side: Side, quantity: string, symbol: string, decimals: number): string | null {
    if (this.type === 'market') return null;
    const price = this.price.value.trim();
    const at = /^\d+(\.\d+)?$/.test(price) ? ` at ${formatDecimal(price, decimals)}` : '';
    return `Place ${side} ${this.type} ${quantity} ${symbol}${at}`;
  }

  request(base: Omit<OrderRequest, 'type' | 'price' | 'expiresAt'>): OrderRequest {
    if (this.type === 'market') throw new Error('a market order is not a pending order');
    const order: OrderRequest = { ...base, type: this.type, price: this.price.value.trim() };
    const expiry = parseExpiry(this.expiry.value);
    if (expiry !== null) order.expiresAt = expiry;
    return order;
  }
}
