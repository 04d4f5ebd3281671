/**
 * The order ticket: side, quantity (the asset's step and bounds), leverage slider up to the
 * asset's maximum, optional SL/TP checked with the engine's direction rules, and a preview of
 * the fill price, spread, required margin and liquidation price before sending. Each click on
 * the send button is one request with one Idempotency-Key; the button is disabled while it is
 * in flight, so a double click never opens two positions. A limit or stop order (ticket-order.ts)
 * is previewed at its own price and placed as a pending order instead.
 */
import { type Api, ApiError, type Asset, newIdempotencyKey, type OpenRequest } from '../api/client';
import { placeOrder } from '../api/orders';
import { byId, fill, h } from '../dom';
import {
  fillPrice,
  formatDecimal,
  formatMoney,
  levelError,
  liquidationPrice,
  margin,
  quantityError,
  type Side,
  spread,
  stepQuantity,
  subtract,
  sign,
} from '../money';
import type { Store } from '../store';
import { OrderFields } from './ticket-order';
import { toast } from './toast';

export class Ticket {
  private side: Side = 'buy';
  private asset: Asset | null = null;
  private readonly quantity = h('input', { id: 't-qty', inputmode: 'decimal', autocomplete: 'off' });
  private readonly leverage = h('input', { id: 't-lev', type: 'range', min: 1, step: 1 });
  private readonly leverageOut = h('output', { for: 't-lev', class: 'num' });
  private readonly stopLoss = h('input', { id: 't-sl', inputmode: 'decimal', autocomplete: 'off', placeholder: 'none' });
  private readonly takeProfit = h('input', { id: 't-tp', inputmode: 'decimal', autocomplete: 'off', placeholder: 'none' });
  private readonly preview = h('dl', { class: 'preview' });
  private readonly problems = h('div', { class: 'form-error', role: 'alert' });
  private readonly submit = h('button', { type: 'submit', class: 'primary submit' });
  private readonly sideButtons: Record<Side, HTMLButtonElement>;
  private readonly order = new OrderFields((typeChanged) => this.orderChanged(typeChanged));
  private sending = false;
  /** The engine's last refusal, shown until the trader changes the order. */
  private refusal = '';

  constructor(
    private readonly store: Store,
    private readonly api: Api,
    private readonly onOpened: () => void,
  ) {
    const sideButton = (s: Side, label: string) =>
      h('button', { type: 'button', class: `side side-${s}`, 'aria-pressed': 'false', onclick: () => this.setSide(s) }, label);
    this.sideButtons = { buy: sideButton('buy', 'Buy'), sell: sideButton('sell', 'Sell') };
    const stepper = (delta: number, label: string) =>
      h('button', {
        type: 'button',
        class: 'stepper',
        'aria-label': label,
        onclick: () => {
          if (this.asset) this.quantity.value = stepQuantity(this.quantity.value, delta, this.asset);
          this.update();
        },
      }, delta > 0 ? '+' : '−');
    const form = h(
      'form',
      { class: 'ticket', 'aria-label': 'Order ticket', novalidate: true },
      h('h2', { id: 'ticket-title' }),
      h('div', { class: 'sides', role: 'group', 'aria-label': 'Side' }, this.sideButtons.buy, this.sideButtons.sell),
      this.order.elements,
      h('label', { for: 't-qty' }, 'Quantity'),
      h('div', { class: 'qty' }, stepper(-1, 'Decrease quantity'), this.quantity, stepper(1, 'Increase quantity')),
      h('label', { for: 't-lev' }, 'Leverage ', this.leverageOut),
      this.leverage,
      h('div', { class: 'levels' },
        h('div', {}, h('label', { for: 't-sl' }, 'Stop-loss'), this.stopLoss),
        h('div', {}, h('label', { for: 't-tp' }, 'Take-profit'), this.takeProfit)),
      this.preview,
      this.problems,
      this.submit,
    );
    for (const input of [this.quantity, this.leverage, this.stopLoss, this.takeProfit]) {
      input.addEventListener('input', () => {
        this.refusal = '';
        this.update();
      });
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.send();
    });
    fill(byId('ticket'), form);
    this.setSide('buy');
  }

  /** Called when the selected asset changes (or the asset table arrives). */
  setAsset(asset: Asset): void {
    const changed = this.asset?.symbol !== asset.symbol;
    this.asset = asset;
    this.leverage.max = String(asset.maxLeverage);
    if (changed) {
      this.quantity.value = stepQuantity(asset.minQuantity, 99, asset);
      this.leverage.value = String(Math.min(10, asset.maxLeverage));
      this.stopLoss.value = '';
      this.takeProfit.value = '';
      this.order.reset();
      byId('ticket-title').textContent = `${asset.symbol} · ${asset.name}`;
    }
    this.update();
  }

  private setSide(side: Side): void {
    this.side = side;
    this.refusal = '';
    for (const s of ['buy', 'sell'] as Side[]) {
      this.sideButtons[s].setAttribute('aria-pressed', String(s === side));
    }
    this.update();
  }

  /** A new order type (or its price or expiry edited). */
  private orderChanged(typeChanged: boolean): void {
    this.refusal = '';
    const q = this.asset && this.store.quote(this.asset.symbol);
    if (typeChanged) this.order.price.value = '';
    if (typeChanged && q && this.asset) this.order.suggest(this.side, q.bid, q.ask, this.asset.priceDecimals);
    this.update();
  }

  /** The problems the engine would refuse the order for, checked here first. */
  private check(bid: string, ask: string): string[] {
    const a = this.asset;
    if (!a) return [];
    const out: string[] = [];
    const q = quantityError(this.quantity.value, a);
    if (q) out.push(q);
    // A pending order's levels are checked against its own price, not the market.
    if (this.order.pending) return [...out, ...this.order.check(this.side, bid, ask, a.priceDecimals, this.stopLoss.value, this.takeProfit.value)];
    for (const [kind, input] of [['stopLoss', this.stopLoss], ['takeProfit', this.takeProfit]] as const) {
      if (input.value.trim() === '') continue;
      const e = levelError(kind, this.side, input.value, bid, ask, a.priceDecimals);
      if (e) out.push(e);
    }
    return out;
  }

  /** Recomputes the preview at the live quote. */
  update(): void {
    const a = this.asset;
    if (!a) return;
    const lev = Number(this.leverage.value);
    this.leverageOut.textContent = `1:${lev}`;
    const verb = this.side === 'buy' ? 'Buy' : 'Sell';
    this.submit.textContent = this.order.label(this.side, this.quantity.value || '0', a.symbol, a.priceDecimals) ??
      `${verb} ${this.quantity.value || '0'} ${a.symbol}`;
    this.submit.className = `primary submit submit-${this.side}`;
    const q = this.store.quote(a.symbol);
    const problems = q ? this.check(q.bid, q.ask) : ['No price yet.'];
    const row = (label: string, value: string) => [h('dt', {}, label), h('dd', { class: 'num' }, value)];
    const priced = q && (!this.order.pending || !this.order.priceError(this.side, q.bid, q.ask, a.priceDecimals));
    if (q && priced && !quantityError(this.quantity.value, a)) {
      const fillAt = this.order.pending ? this.order.price.value.trim() : fillPrice(this.side, q.bid, q.ask);
      const m = margin(this.quantity.value, fillAt, lev);
      const liq = liquidationPrice(this.side, fillAt, m, this.quantity.value, a.priceDecimals);
      const free = this.store.state.balance ? subtract(this.store.state.balance.balance, this.store.state.balance.usedMargin) : null;
      // A pending order's margin is checked when it triggers, against the free margin then.
      if (!this.order.pending && free !== null && sign(subtract(free, m)) < 0) problems.push(`Required margin ${formatMoney(m)} exceeds your free margin ${formatMoney(free)}.`);
      fill(
        this.preview,
        this.order.preview(this.side, a.priceDecimals).flatMap(([label, value]) => row(label, value)),
        row(this.order.pending ? 'Order price' : 'Fill price', formatDecimal(fillAt, a.priceDecimals)),
        row('Spread', spread(q.bid, q.ask, a.priceDecimals)),
        row('Required margin', `${formatMoney(m)} USD`),
        row('Liquidation price', liq === null ? 'none' : formatDecimal(liq, a.priceDecimals)),
      );
    } else {
      fill(this.preview);
    }
    fill(this.problems, ...[this.refusal, ...problems].filter(Boolean).map((p) => h('p', {}, p)));
    this.submit.disabled = this.sending || problems.length > 0;
  }

  private async send(): Promise<void> {
    const a = this.asset;
    const q = a && this.store.quote(a.symbol);
    if (!a || !q || this.sending || this.check(q.bid, q.ask).length > 0) return;
    if (this.order.pending) return this.sendPending(a);
    const order: OpenRequest = {
      asset: a.symbol as OpenRequest['asset'],
      side: this.side,
      quantity: this.quantity.value.trim(),
      leverage: Number(this.leverage.value),
    };
    if (this.stopLoss.value.trim()) order.stopLoss = this.stopLoss.value.trim();
    if (this.takeProfit.value.trim()) order.takeProfit = this.takeProfit.value.trim();
    await this.sendWith(async () => {
      const p = await this.api.open(order, newIdempotencyKey());
      return `Opened #${p.id}: ${p.side} ${p.quantity} ${p.asset} at ${formatDecimal(p.openPrice, a.priceDecimals)}`;
    });
  }

  private async sendPending(a: Asset): Promise<void> {
    const order = this.order.request({
      asset: a.symbol,
      side: this.side,
      quantity: this.quantity.value.trim(),
      leverage: Number(this.leverage.value),
      ...(this.stopLoss.value.trim() ? { stopLoss: this.stopLoss.value.trim() } : {}),
      ...(this.takeProfit.value.trim() ? { takeProfit: this.takeProfit.value.trim() } : {}),
    });
    await this.sendWith(async () => {
      const o = await placeOrder(this.api, order, newIdempotencyKey());
      return `Order #${o.id} placed: ${o.side} ${o.type} ${o.quantity} ${o.asset} at ${formatDecimal(o.price, a.priceDecimals)}`;
    });
  }

  /** One request with the button disabled; its answer (or refusal) as a toast. */
  private async sendWith(request: () => Promise<string>): Promise<void> {
    this.sending = true;
    this.update();
    try {
      toast(await request(), 'success');
      this.onOpened();
    } catch (e) {
      const text = e instanceof ApiError ? e.message : 'The order could not be sent.';
      this.refusal = text;
      toast(text, 'error');
    } finally {
      this.sending = false;
      this.update();
    }
  }
}
