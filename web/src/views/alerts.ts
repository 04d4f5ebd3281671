/**
 * Price alerts on the page: a small form under the order ticket (the level, with the side it
 * waits for shown as you type), a right-click on the chart to set one at that price, a dashed
 * line per active alert of the shown asset, the list to cancel them, and a toast (with an
 * optional beep) when the hub says one fired. The hub delivers at least once, so a fired
 * alert is announced once per id.
 *
 * "Above" fires when the ask reaches the level, "below" when the bid does (as the API says);
 * a level at or over the ask is "above", anything lower "below".
 */
import './alerts.css';
import Big from 'big.js';
import type { IPriceLine } from 'lightweight-charts';
import { LineStyle } from 'lightweight-charts';
import { type Alert, cancelAlert, createAlert, type Direction, listAlerts } from '../api/alerts';
import { type Api, ApiError } from '../api/client';
import { fill, h } from '../dom';
import { formatDecimal, parseDecimal } from '../money';
import type { Store } from '../store';
import type { ChartView } from './chart';
import { toast } from './toast';

const ALERT_COLOR = '#ffcf40';

export class AlertsView {
  private alerts: Alert[] = [];
  private lines: IPriceLine[] = [];
  /** Fired alerts already announced (the hub may deliver one twice). */
  private readonly announced = new Set<number>();
  private readonly price = h('input', { id: 'a-price', inputmode: 'decimal', autocomplete: 'off', placeholder: 'price' });
  private readonly hint = h('div', { class: 'alert-hint muted' });
  private readonly problem = h('div', { class: 'form-error', role: 'alert' });
  private readonly list = h('ul', { class: 'alert-list', 'aria-label': 'Price alerts' });
  private readonly sound = h('input', { type: 'checkbox', id: 'a-sound' });
  private readonly menu = h('div', { class: 'alert-menu', hidden: true });

  constructor(
    root: HTMLElement,
    private readonly api: Api,
    private readonly store: Store,
    private readonly chart: ChartView,
  ) {
    const form = h('form', { class: 'alerts-form', 'aria-label': 'Price alert', novalidate: true },
      h('h2', {}, 'Price alert'),
      h('label', { for: 'a-price' }, 'Alert price'),
      h('div', { class: 'alert-row' }, this.price, h('button', { type: 'submit', class: 'small' }, 'Set alert')),
      this.hint, this.problem,
      h('label', { class: 'alert-sound' }, this.sound, ' Sound when one fires'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.create(this.price.value.trim());
    });
    this.price.addEventListener('input', () => this.showHint());
    fill(root, form, this.list);
    document.body.append(this.menu);
    this.setupContextMenu();
    store.subscribe((_, changed) => {
      if (changed.has('token')) void this.load();
      if (changed.has('selected')) this.draw();
      if (changed.has('quotes') || changed.has('selected')) this.showHint();
    });
    void this.load();
  }

  private decimals(asset = this.store.state.selected): number {
    return this.store.asset(asset)?.priceDecimals ?? 2;
  }

  /** The side a level waits for, against the live quote of the shown asset. */
  private direction(level: Big): Direction | null {
    const q = this.store.quote(this.store.state.selected);
    if (!q) return null;
    return level.gte(new Big(q.ask)) ? 'above' : 'below';
  }

  private showHint(): void {
    const level = parseDecimal(this.price.value.trim());
    const side = level ? this.direction(level) : null;
    this.hint.textContent = !side ? '' : side === 'above'
      ? `Fires when the ${this.store.state.selected} ask reaches it`
      : `Fires when the ${this.store.state.selected} bid falls to it`;
  }

  /** Reloads the list (after signing in, a reconnect, or a change). */
  async load(): Promise<void> {
    if (!this.store.state.token) {
      this.alerts = [];
      this.render();
      return;
    }
    try {
      this.alerts = await listAlerts(this.api);
      for (const a of this.alerts) if (a.status === 'triggered') this.announced.add(a.id);
      this.render();
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) toast(e.message, 'error');
    }
  }

  private async create(text: string): Promise<void> {
    const asset = this.store.state.selected;
    const level = parseDecimal(text);
    const side = level && level.gt(0) ? this.direction(level) : null;
    if (!level || !side) {
      this.problem.textContent = level ? 'No price yet for this instrument.' : 'Enter a price, e.g. 65000.00';
      return;
    }
    this.problem.textContent = '';
    try {
      const alert = await createAlert(this.api, asset, text, side);
      this.price.value = '';
      this.showHint();
      toast(`Alert set: ${asset} ${side} ${formatDecimal(alert.price, this.decimals(asset))}`, 'info', 4000);
      await this.load();
    } catch (e) {
      this.problem.textContent = e instanceof ApiError ? e.message : 'The alert was not set.';
    }
  }

  private async cancel(alert: Alert): Promise<void> {
    try {
      await cancelAlert(this.api, alert.id);
    } catch (e) {
      if (e instanceof ApiError) toast(e.message, 'error');
    }
    await this.load();
  }

  /** The hub's `{"type":"alert"}` message. */
  onFired(alert: Alert): void {
    if (!this.announced.has(alert.id)) {
      this.announced.add(alert.id);
      const d = this.decimals(alert.asset);
      const side = alert.direction === 'above' ? 'ask' : 'bid';
      const at = formatDecimal(alert.triggeredPrice ?? alert.price, d);
      toast(`Alert: ${alert.asset} ${alert.direction} ${formatDecimal(alert.price, d)} — the ${side} reached ${at}`, 'success', 15000);
      if (this.sound.checked) beep();
    }
    // Shown at once; then the whole list again (it may have been made on another device).
    this.alerts = this.alerts.map((a) => (a.id === alert.id ? alert : a));
    this.render();
    void this.load();
  }

  private render(): void {
    const describe = (a: Alert) => {
      const level = `${a.asset} ${a.direction} ${formatDecimal(a.price, this.decimals(a.asset))}`;
      if (a.status === 'active') {
        const cancel = h('button', { type: 'button', class: 'small', 'aria-label': `Cancel alert ${level}`, onclick: () => void this.cancel(a) }, 'Cancel');
        return h('li', { class: 'alert-item' }, h('span', { class: 'num' }, level), h('span', { class: 'muted' }, 'active'), cancel);
      }
      const when = a.triggeredAt ? new Date(a.triggeredAt).toLocaleTimeString() : '';
      const status = a.status === 'triggered'
        ? `fired at ${formatDecimal(a.triggeredPrice ?? a.price, this.decimals(a.asset))} ${when}`
        : 'cancelled';
      return h('li', { class: `alert-item alert-${a.status}` }, h('span', { class: 'num' }, level), h('span', { class: 'muted' }, status));
    };
    const shown = this.alerts.slice(0, 20);
    fill(this.list, shown.length ? shown.map(describe) : h('li', { class: 'muted' }, 'No alerts'));
    this.draw();
  }

  /** A dashed line per active alert of the shown asset. */
  private draw(): void {
    const series = this.chart.series;
    for (const l of this.lines) series.removePriceLine(l);
    this.lines = this.alerts
      .filter((a) => a.status === 'active' && a.asset === this.store.state.selected)
      .map((a) => series.createPriceLine({
        price: Number(a.price), color: ALERT_COLOR, lineWidth: 1, lineStyle: LineStyle.LargeDashed,
        axisLabelVisible: true, title: `Alert ${a.direction === 'above' ? '↑' : '↓'}`,
      }));
  }

  /** Right-click on the chart: "Alert at <price>" where the pointer is. */
  private setupContextMenu(): void {
    const canvas = this.chart.canvas;
    const hide = () => { this.menu.hidden = true; };
    canvas.addEventListener('contextmenu', (e) => {
      const box = canvas.getBoundingClientRect();
      const at = this.chart.series.coordinateToPrice(e.clientY - box.top);
      if (at === null || !this.store.state.token) return;
      e.preventDefault();
      const price = new Big(at).toFixed(this.decimals());
      const item = h('button', { type: 'button', class: 'small', role: 'menuitem', onclick: () => { hide(); void this.create(price); } },
        `Alert at ${formatDecimal(price, this.decimals())}`);
      fill(this.menu, item);
      this.menu.style.left = `${Math.min(e.clientX, window.innerWidth - 180)}px`;
      this.menu.style.top = `${e.clientY}px`;
      this.menu.hidden = false;
      item.focus();
    });
    document.addEventListener('click', (e) => { if (!this.menu.contains(e.target as Node)) hide(); });
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape') hide(); });
  }
}

/** A short tone (only after the trader ticked "Sound": browsers allow audio after a gesture). */
function beep(): void {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.08;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.18);
    osc.onended = () => void ctx.close();
  } catch {
    // No audio here: the toast is enough.
  }
}
