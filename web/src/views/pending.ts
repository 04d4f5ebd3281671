/**
 * The Pending tab: the trader's pending limit and stop orders with the market price they
 * watch, a Cancel button and an inline Modify form (price, SL/TP and expiry; SL, TP and expiry
 * are replaced as a whole, so the form starts from the order's own values), and below them the
 * order history (order-history.ts).
 */
import { ApiError, type Api, newIdempotencyKey } from '../api/client';
import { cancelOrder, modifyOrder, type PendingOrder } from '../api/orders';
import { fill, h } from '../dom';
import { formatDecimal } from '../money';
import {
  expiryError,
  expiryInputValue,
  formatExpiry,
  orderLevelError,
  orderPriceError,
  parseExpiry,
  triggerPrice,
} from '../order-rules';
import type { Store } from '../store';
import { OrderHistory } from './order-history';
import { toast } from './toast';

const COLUMNS = ['#', 'Symbol', 'Type', 'Quantity', 'Price', 'Market', 'SL', 'TP', 'Expiry', ''];

function cell(label: string, value: Node | string, cls = ''): HTMLTableCellElement {
  return h('td', { 'data-label': label, class: cls }, value);
}

export class PendingList {
  /** The order whose Modify form is open: re-renders leave it alone. */
  editing: number | null = null;
  private readonly history: OrderHistory;

  constructor(
    private readonly store: Store,
    private readonly api: Api,
    private readonly body: HTMLElement,
    private readonly refresh: () => void,
  ) {
    this.history = new OrderHistory(store, api);
  }

  private decimals(asset: string): number {
    return this.store.asset(asset)?.priceDecimals ?? 2;
  }

  render(): void {
    this.history.pendingChanged();
    if (this.editing !== null && this.store.state.orders.some((o) => o.id === this.editing)) {
      this.updateMarket();
      return;
    }
    this.editing = null;
    const orders = this.store.state.orders;
    if (!orders.length) {
      fill(this.body, h('p', { class: 'empty' }, 'No pending orders. Choose Limit or Stop in the order ticket to place one.'), this.history.root);
      return;
    }
    const rows = orders.map((o) => {
      const d = this.decimals(o.asset);
      const price = (v: string | null) => (v === null ? '—' : formatDecimal(v, d));
      return h('tr', {},
        cell('#', String(o.id), 'num'),
        cell('Symbol', o.asset),
        cell('Type', h('span', { class: `side-tag side-${o.side}` }, `${o.side} ${o.type}`)),
        cell('Quantity', o.quantity, 'num'),
        cell('Price', price(o.price), 'num'),
        h('td', { 'data-label': 'Market', 'data-market': String(o.id), class: 'num' }, '—'),
        cell('SL', price(o.stopLoss), 'num'),
        cell('TP', price(o.takeProfit), 'num'),
        cell('Expiry', o.expiresAt === null ? 'GTC' : formatExpiry(o.expiresAt)),
        cell('', h('span', { class: 'row-actions' },
          h('button', { type: 'button', class: 'secondary small', 'aria-label': `Modify order ${o.id}`, onclick: () => this.edit(o) }, 'Modify'),
          h('button', { type: 'button', class: 'danger small', 'aria-label': `Cancel order ${o.id}`, onclick: (e: Event) => void this.cancel(o, e.currentTarget as HTMLButtonElement) }, 'Cancel'))),
      );
    });
    fill(this.body, h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, COLUMNS.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)), this.history.root);
    this.updateMarket();
  }

  /** The live price each order watches (the ask for a buy, the bid for a sell). */
  updateMarket(): void {
    for (const o of this.store.state.orders) {
      const el = this.body.querySelector<HTMLElement>(`[data-market="${o.id}"]`);
      const q = this.store.quote(o.asset);
      if (el && q) el.textContent = formatDecimal(triggerPrice(o.side, q.bid, q.ask), this.decimals(o.asset));
    }
  }

  private async cancel(o: PendingOrder, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      const c = await cancelOrder(this.api, o.id, newIdempotencyKey());
      toast(`Order #${c.id} cancelled`, 'success');
    } catch (e) {
      toast(e instanceof ApiError ? e.message : 'Could not cancel the order.', 'error');
      button.disabled = false;
    }
    this.refresh();
  }

  private edit(o: PendingOrder): void {
    this.editing = null;
    this.render();
    this.editing = o.id;
    const input = (id: string, value: string, attrs: Record<string, string> = {}) =>
      h('input', { id: `${id}-${o.id}`, inputmode: 'decimal', value, placeholder: 'none', ...attrs });
    const price = input('order-price', o.price);
    const sl = input('order-sl', o.stopLoss ?? '');
    const tp = input('order-tp', o.takeProfit ?? '');
    const expiry = input('order-exp', expiryInputValue(o.expiresAt), { type: 'datetime-local' });
    const error = h('p', { class: 'form-error', role: 'alert' });
    const close = () => {
      this.editing = null;
      this.render();
    };
    const form = h('form', { class: 'edit-levels', 'aria-label': `Modify order ${o.id}` },
      h('label', { for: price.id }, 'Price'), price,
      h('label', { for: sl.id }, 'Stop-loss'), sl,
      h('label', { for: tp.id }, 'Take-profit'), tp,
      h('label', { for: expiry.id }, 'Expiry'), expiry,
      h('button', { type: 'submit', class: 'primary small' }, 'Save'),
      h('button', { type: 'button', class: 'secondary small', onclick: close }, 'Cancel'),
      error);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const change = { price: price.value.trim(), stopLoss: sl.value.trim() || null, takeProfit: tp.value.trim() || null, expiresAt: parseExpiry(expiry.value) };
      void this.save(o, change).then((problem) => {
        if (problem) error.textContent = problem;
        else close();
      });
    });
    const index = this.store.state.orders.findIndex((x) => x.id === o.id);
    this.body.querySelectorAll('tbody tr')[index]?.after(h('tr', { class: 'edit-row' }, h('td', { colspan: COLUMNS.length }, form)));
    price.focus();
  }

  /** Checks the change like the engine, then sends it; the refusal text, or null when done. */
  private async save(o: PendingOrder, change: { price: string; stopLoss: string | null; takeProfit: string | null; expiresAt: number | null }): Promise<string | null> {
    const d = this.decimals(o.asset);
    const q = this.store.quote(o.asset);
    const problems = [
      q ? orderPriceError(o.side, o.type, change.price, q.bid, q.ask, d) : null,
      change.stopLoss === null ? null : orderLevelError('stopLoss', o.side, change.stopLoss, change.price, d),
      change.takeProfit === null ? null : orderLevelError('takeProfit', o.side, change.takeProfit, change.price, d),
      expiryError(change.expiresAt, Date.now()),
    ].filter((p): p is string => p !== null);
    if (problems.length) return problems.join(' ');
    try {
      const m = await modifyOrder(this.api, o.id, change, newIdempotencyKey());
      toast(`Order #${m.id}: price ${formatDecimal(m.price, d)}, stop-loss ${m.stopLoss ?? 'none'}, take-profit ${m.takeProfit ?? 'none'}, ${m.expiresAt === null ? 'good till cancelled' : `expires ${formatExpiry(m.expiresAt)}`}`, 'success');
      this.refresh();
      return null;
    } catch (e) {
      return e instanceof ApiError ? e.message : 'Could not modify the order.';
    }
  }
}
