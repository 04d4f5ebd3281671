/**
 * The order history under the Pending tab: filled orders with the position each opened,
 * cancelled ones with why (by the trader, expired, or no margin when it triggered), newest
 * first, 20 a page. Loaded when the trader asks for it, then again whenever the pending list
 * changes (an order left it) or on Refresh.
 */
import { type Api, ApiError } from '../api/client';
import { type FinishedOrder, orderHistory } from '../api/orders';
import { fill, h } from '../dom';
import { formatDecimal } from '../money';
import type { Store } from '../store';
import { toast } from './toast';

const PAGE = 20;
const CANCELLED: Record<string, string> = {
  user: 'Cancelled',
  expired: 'Expired',
  insufficient_margin: 'Cancelled: no margin',
  too_many_positions: 'Cancelled: position limit',
};

/** What became of a finished order, in a word or two. */
export function outcome(o: Pick<FinishedOrder, 'status' | 'positionId' | 'cancelReason'>): string {
  if (o.status === 'filled') return o.positionId === null ? 'Filled' : `Filled: position #${o.positionId}`;
  return CANCELLED[o.cancelReason ?? 'user'] ?? 'Cancelled';
}

export class OrderHistory {
  readonly root = h('section', { class: 'order-history', 'aria-label': 'Order history' });
  private orders: FinishedOrder[] = [];
  private next: string | null = null;
  private shown = false;
  private pendingIds = '';

  constructor(
    private readonly store: Store,
    private readonly api: Api,
  ) {
    this.render();
  }

  /** The pending list re-rendered: reload when an order left it. */
  pendingChanged(): void {
    const ids = this.store.state.orders.map((o) => o.id).join(',');
    if (ids === this.pendingIds) return;
    this.pendingIds = ids;
    if (this.shown) void this.load();
  }

  private async load(more = false): Promise<void> {
    try {
      const page = await orderHistory(this.api, PAGE, more ? (this.next ?? undefined) : undefined);
      this.orders = more ? [...this.orders, ...page.orders] : page.orders;
      this.next = page.next;
    } catch (e) {
      toast(e instanceof ApiError ? e.message : 'Could not load the order history.', 'error');
    }
    this.render();
  }

  private toggle(): void {
    this.shown = !this.shown;
    if (this.shown) void this.load();
    else this.render();
  }

  private render(): void {
    const head = h('div', { class: 'history-head' },
      h('h3', {}, 'Order history'),
      h('button', { type: 'button', class: 'secondary small', 'aria-expanded': String(this.shown), onclick: () => this.toggle() }, this.shown ? 'Hide' : 'Show'),
      this.shown ? h('button', { type: 'button', class: 'secondary small', onclick: () => void this.load() }, 'Refresh') : null);
    if (!this.shown) {
      fill(this.root, head);
      return;
    }
    if (!this.orders.length) {
      fill(this.root, head, h('p', { class: 'empty' }, 'No filled or cancelled orders yet.'));
      return;
    }
    const cell = (label: string, value: string, cls = '') => h('td', { 'data-label': label, class: cls }, value);
    const rows = this.orders.map((o) => {
      const d = this.store.asset(o.asset)?.priceDecimals ?? 2;
      return h('tr', {},
        cell('#', String(o.id), 'num'),
        cell('Symbol', o.asset),
        h('td', { 'data-label': 'Type' }, h('span', { class: `side-tag side-${o.side}` }, `${o.side} ${o.type}`)),
        cell('Quantity', o.quantity, 'num'),
        cell('Price', formatDecimal(o.price, d), 'num'),
        cell('Outcome', outcome(o)),
        cell('When', new Date(o.finishedAt).toLocaleString()));
    });
    const columns = ['#', 'Symbol', 'Type', 'Quantity', 'Price', 'Outcome', 'When'];
    const more = this.next ? h('button', { type: 'button', class: 'secondary small more', onclick: () => void this.load(true) }, 'Load more') : null;
    fill(this.root, head, h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, columns.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)), more);
  }
}
