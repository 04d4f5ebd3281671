/**
 * The Open / Pending / Closed tabs: open positions with live PnL, SL/TP and trailing-distance
 * editing, a close button and a partial close; pending orders (pending.ts); closed positions
 * with their close reason, newest first, a page at a time.
 */
import { type Api, ApiError, type OpenPosition, newIdempotencyKey } from '../api/client';
import { byId, fill, h } from '../dom';
import { formatDecimal, formatSigned, levelError, sign } from '../money';
import type { Store } from '../store';
import { livePnl } from './account';
import { PendingList } from './pending';
import { partialCloseForm, trailingField, trailingOf } from './position-forms';
import { toast } from './toast';

export const REASONS: Record<string, string> = {
  manual: 'Manual',
  stop_loss: 'Stop-loss',
  take_profit: 'Take-profit',
  liquidation: 'Liquidation',
  trailing_stop: 'Trailing stop',
};

type Tab = 'open' | 'pending' | 'closed';
const OPEN_COLUMNS = ['#', 'Symbol', 'Side', 'Quantity', 'Open', 'Current', 'SL', 'TP', 'Trail', 'Liq.', 'PnL', ''];
const TABS: Tab[] = ['open', 'pending', 'closed'];

function cell(label: string, value: Node | string, cls = ''): HTMLTableCellElement {
  return h('td', { 'data-label': label, class: cls }, value);
}

function pnlClass(value: string): string {
  const s = sign(value);
  return `num ${s > 0 ? 'up' : s < 0 ? 'down' : ''}`;
}

export class Positions {
  private tab: Tab = 'open';
  private editing: number | null = null;
  private readonly body = h('div', { class: 'positions-body', id: 'positions-body', role: 'tabpanel' });
  private readonly tabs: Record<Tab, HTMLButtonElement>;
  private readonly pending: PendingList;

  constructor(
    private readonly store: Store,
    private readonly api: Api,
    private readonly actions: { refresh(): void; loadMoreClosed(): void },
  ) {
    const tab = (t: Tab, label: string) =>
      h('button', { type: 'button', role: 'tab', id: `tab-${t}`, 'aria-controls': 'positions-body', onclick: () => this.show(t) }, label);
    this.tabs = { open: tab('open', 'Open'), pending: tab('pending', 'Pending'), closed: tab('closed', 'Closed') };
    this.pending = new PendingList(store, api, this.body, () => actions.refresh());
    fill(byId('positions'), h('div', { role: 'tablist', 'aria-label': 'Positions', class: 'tabs' }, TABS.map((t) => this.tabs[t])), this.body);
    this.show('open');
  }

  private show(t: Tab): void {
    this.tab = t;
    this.pending.editing = null;
    for (const k of TABS) {
      this.tabs[k].setAttribute('aria-selected', String(k === t));
      this.tabs[k].tabIndex = k === t ? 0 : -1;
    }
    this.body.setAttribute('aria-labelledby', `tab-${t}`);
    this.render();
  }

  /** Re-renders the visible tab; an SL/TP form being edited is left alone. */
  render(): void {
    const count = this.store.state.open.length;
    this.tabs.open.textContent = count ? `Open (${count})` : 'Open';
    const orders = this.store.state.orders.length;
    this.tabs.pending.textContent = orders ? `Pending (${orders})` : 'Pending';
    if (this.tab === 'pending') this.pending.render();
    else if (this.tab === 'open') {
      if (this.editing !== null && this.store.state.open.some((p) => p.id === this.editing)) {
        this.updatePnl();
        return;
      }
      this.editing = null;
      this.renderOpen();
    } else {
      this.renderClosed();
    }
  }

  /** Only the PnL cells, on every quote. */
  updatePnl(): void {
    if (this.tab === 'pending') this.pending.updateMarket();
    if (this.tab !== 'open') return;
    const live = livePnl(this.store);
    for (const [id, value] of live) {
      const el = this.body.querySelector<HTMLElement>(`[data-pnl="${id}"]`);
      if (el) {
        el.textContent = formatSigned(value);
        el.className = pnlClass(value);
      }
    }
    for (const p of this.store.state.open) {
      const el = this.body.querySelector<HTMLElement>(`[data-current="${p.id}"]`);
      const q = this.store.quote(p.asset);
      if (el && q) el.textContent = formatDecimal(p.side === 'buy' ? q.bid : q.ask, this.decimals(p.asset));
    }
  }

  private decimals(asset: string): number {
    return this.store.asset(asset)?.priceDecimals ?? 2;
  }

  private renderOpen(): void {
    const open = this.store.state.open;
    if (!open.length) {
      fill(this.body, h('p', { class: 'empty' }, 'No open positions. Use the order ticket to open one.'));
      return;
    }
    const live = livePnl(this.store);
    const rows = open.map((p) => {
      const d = this.decimals(p.asset);
      const price = (v: string | null) => (v === null ? '—' : formatDecimal(v, d));
      const q = this.store.quote(p.asset);
      const current = q ? (p.side === 'buy' ? q.bid : q.ask) : p.currentPrice;
      const value = live.get(p.id) ?? p.unrealizedPnl;
      return h('tr', {},
        cell('#', String(p.id), 'num'),
        cell('Symbol', p.asset),
        cell('Side', h('span', { class: `side-tag side-${p.side}` }, p.side)),
        cell('Quantity', p.quantity, 'num'),
        cell('Open', price(p.openPrice), 'num'),
        h('td', { 'data-label': 'Current', 'data-current': String(p.id), class: 'num' }, price(current)),
        cell('SL', price(p.stopLoss), 'num'),
        cell('TP', price(p.takeProfit), 'num'),
        cell('Trail', price(trailingOf(p)), 'num'),
        cell('Liq.', price(p.liquidationPrice), 'num'),
        h('td', { 'data-label': 'PnL', 'data-pnl': String(p.id), class: pnlClass(value) }, formatSigned(value)),
        cell('', h('span', { class: 'row-actions' },
          h('button', { type: 'button', class: 'secondary small', 'aria-label': `Modify SL/TP of position ${p.id}`, onclick: () => this.edit(p) }, 'SL/TP'),
          h('button', { type: 'button', class: 'secondary small', 'aria-label': `Close part of position ${p.id}`, onclick: () => this.closePart(p) }, 'Part'),
          h('button', { type: 'button', class: 'danger small', 'aria-label': `Close position ${p.id}`, onclick: (e: Event) => void this.close(p, e.currentTarget as HTMLButtonElement) }, 'Close'))),
      );
    });
    fill(this.body, this.table(OPEN_COLUMNS, rows));
  }

  private table(headers: string[], rows: HTMLTableRowElement[]): HTMLTableElement {
    return h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows));
  }

  private async close(p: OpenPosition, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      const c = await this.api.close(p.id, newIdempotencyKey());
      toast(`Closed #${c.id} at ${formatDecimal(c.closePrice, this.decimals(c.asset))}: ${formatSigned(c.realizedPnl)} USD`, sign(c.realizedPnl) >= 0 ? 'success' : 'warning');
    } catch (e) {
      toast(e instanceof ApiError ? e.message : 'Could not close the position.', 'error');
      button.disabled = false;
    }
    this.actions.refresh();
  }

  /** An inline form for the position's SL and TP (empty clears a level). */
  private edit(p: OpenPosition): void {
    this.editing = p.id;
    this.renderOpen();
    const sl = h('input', { id: `edit-sl-${p.id}`, inputmode: 'decimal', value: p.stopLoss ?? '', placeholder: 'none' });
    const tp = h('input', { id: `edit-tp-${p.id}`, inputmode: 'decimal', value: p.takeProfit ?? '', placeholder: 'none' });
    const trail = trailingField(this.store, p, this.decimals(p.asset));
    const error = h('p', { class: 'form-error', role: 'alert' });
    const cancel = () => {
      this.editing = null;
      this.renderOpen();
    };
    const form = h('form', { class: 'edit-levels', 'aria-label': `Modify position ${p.id}` },
      h('label', { for: sl.id }, 'Stop-loss'), sl,
      h('label', { for: tp.id }, 'Take-profit'), tp,
      trail.elements,
      h('button', { type: 'submit', class: 'primary small' }, 'Save'),
      h('button', { type: 'button', class: 'secondary small', onclick: cancel }, 'Cancel'),
      error);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const trailProblem = trail.error();
      if (trailProblem) {
        error.textContent = trailProblem;
        return;
      }
      void this.saveLevels(p, sl.value.trim() || null, tp.value.trim() || null, trail.input.value.trim() || null).then((problem) => {
        if (problem) error.textContent = problem;
        else cancel();
      });
    });
    this.insertForm(p, form);
    sl.focus();
  }

  /** Puts an inline form under the position's row. */
  private insertForm(p: OpenPosition, form: HTMLFormElement): void {
    const row = h('tr', { class: 'edit-row' }, h('td', { colspan: OPEN_COLUMNS.length }, form));
    const rows = this.body.querySelectorAll('tbody tr');
    const index = this.store.state.open.findIndex((o) => o.id === p.id);
    rows[index]?.after(row);
  }

  /** The inline partial-close form. */
  private closePart(p: OpenPosition): void {
    const asset = this.store.asset(p.asset);
    if (!asset) return;
    this.editing = p.id;
    this.renderOpen();
    const done = () => {
      this.editing = null;
      this.renderOpen();
      this.actions.refresh();
    };
    const form = partialCloseForm(this.api, p, asset, done);
    this.insertForm(p, form);
    form.querySelector('input')?.focus();
  }

  /** Checks the levels like the engine, then sends them; the refusal text, or null when done. */
  async saveLevels(p: OpenPosition, stopLoss: string | null, takeProfit: string | null, trailing = trailingOf(p)): Promise<string | null> {
    const q = this.store.quote(p.asset);
    const d = this.decimals(p.asset);
    if (q) {
      for (const [kind, v] of [['stopLoss', stopLoss], ['takeProfit', takeProfit]] as const) {
        const e = v === null ? null : levelError(kind, p.side, v, q.bid, q.ask, d);
        if (e) return e;
      }
    }
    try {
      await this.api.modify(p.id, stopLoss, takeProfit, newIdempotencyKey(), trailing);
      const trail = trailing === null ? '' : `, trailing ${trailing}`;
      toast(`Position #${p.id}: stop-loss ${stopLoss ?? 'none'}, take-profit ${takeProfit ?? 'none'}${trail}`, 'success');
      this.actions.refresh();
      return null;
    } catch (e) {
      return e instanceof ApiError ? e.message : 'Could not modify the position.';
    }
  }

  private renderClosed(): void {
    const closed = this.store.state.closed;
    if (!closed.length) {
      fill(this.body, h('p', { class: 'empty' }, 'No closed positions yet.'));
      return;
    }
    const rows = closed.map((p) => {
      const d = this.decimals(p.asset);
      return h('tr', {},
        cell('#', String(p.id), 'num'),
        cell('Symbol', p.asset),
        cell('Side', h('span', { class: `side-tag side-${p.side}` }, p.side)),
        cell('Quantity', p.quantity, 'num'),
        cell('Open', formatDecimal(p.openPrice, d), 'num'),
        cell('Close', formatDecimal(p.closePrice, d), 'num'),
        h('td', { 'data-label': 'PnL', class: pnlClass(p.realizedPnl) }, formatSigned(p.realizedPnl)),
        cell('Reason', `${REASONS[p.closeReason] ?? p.closeReason}${p.partial ? ' (part)' : ''}`),
        cell('Closed', new Date(p.closedAt).toLocaleString()),
      );
    });
    const more = this.store.state.closedNext
      ? h('button', { type: 'button', class: 'secondary small more', onclick: () => this.actions.loadMoreClosed() }, 'Load more')
      : null;
    fill(this.body, this.table(['#', 'Symbol', 'Side', 'Quantity', 'Open', 'Close', 'PnL', 'Reason', 'Closed'], rows), more);
  }
}
