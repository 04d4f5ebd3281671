/**
 * The Performance tab: the trader's statistics (GET /account/stats) and a P&L chart (GET
 * /account/pnl: a histogram of each day's realised PnL and a line of its running sum) over
 * 7D / 30D / 90D / all. A top-level tab next to Trading: showing it hides the trading layout.
 * Figures stay the API's decimal strings; the percentages shown are computed with big.js
 * (the chart's coordinates are the only numbers). Reloads when shown, on a range change and,
 * while shown, whenever the closed positions change.
 */
import './performance.css';
import {
  createChart,
  HistogramSeries,
  type IChartApi,
  type ISeriesApi,
  LineSeries,
  type UTCTimestamp,
} from 'lightweight-charts';
import { type AccountStats, type Api, ApiError, type PnlSeries } from '../api/client';
import { byId, fill, h } from '../dom';
import { formatMoney, formatSigned, sign } from '../money';
import type { Store } from '../store';
import { rangeStart, RANGES, type Range, percent, chartData, REASON_NAMES } from './performance-data';

type Figures = AccountStats['overall'];

/** Does not compile when the operations' types did not resolve (a path or status changed). */
type Resolved<T> = [T] extends [never] ? false : true;
export const PERFORMANCE_TYPES_RESOLVED: [Resolved<AccountStats>, Resolved<PnlSeries>] = [true, true];

function signed(value: string | null): string {
  return value === null ? '—' : formatSigned(value);
}

function tone(value: string | null): string {
  const s = value === null ? 0 : sign(value);
  return s > 0 ? 'up' : s < 0 ? 'down' : '';
}

function figure(label: string, value: string, cls = ''): HTMLElement {
  return h('div', { class: 'figure' }, h('dt', {}, label), h('dd', { class: `num ${cls}` }, value));
}

function figures(f: Figures): HTMLElement {
  return h('dl', { class: 'figures', 'aria-label': 'Figures' },
    figure('Realised PnL', `${signed(f.realizedPnl)} USD`, tone(f.realizedPnl)),
    figure('Trades', String(f.trades)),
    figure('Win rate', percent(f.winRate)),
    figure('Profit factor', f.profitFactor ?? '—'),
    figure('Wins / losses', `${f.wins} / ${f.losses}`),
    figure('Gross profit', formatMoney(f.grossProfit), 'up'),
    figure('Gross loss', formatMoney(f.grossLoss), sign(f.grossLoss) < 0 ? 'down' : ''),
    figure('Average win', signed(f.averageWin), tone(f.averageWin)),
    figure('Average loss', signed(f.averageLoss), tone(f.averageLoss)),
    figure('Largest win', signed(f.largestWin), tone(f.largestWin)),
    figure('Largest loss', signed(f.largestLoss), tone(f.largestLoss)),
  );
}

function table(caption: string, headers: string[], rows: HTMLTableRowElement[]): HTMLTableElement {
  return h('table', { class: 'grid breakdown' },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((t, i) => h('th', { scope: 'col', class: i > 0 ? 'num' : '' }, t)))),
    h('tbody', {}, rows));
}

function breakdowns(s: AccountStats): HTMLElement {
  const td = (label: string, v: string, cls = '') => h('td', { 'data-label': label, class: cls }, v);
  const reasons = s.byCloseReason.map((r) => h('tr', {},
    td('Close reason', REASON_NAMES[r.closeReason] ?? r.closeReason),
    td('Trades', String(r.trades), 'num'),
    td('PnL', formatSigned(r.realizedPnl), `num ${tone(r.realizedPnl)}`)));
  const assets = s.byAsset.map((a) => h('tr', {},
    td('Symbol', a.asset),
    td('Trades', String(a.trades), 'num'),
    td('Win rate', percent(a.winRate), 'num'),
    td('Profit factor', a.profitFactor ?? '—', 'num'),
    td('PnL', formatSigned(a.realizedPnl), `num ${tone(a.realizedPnl)}`)));
  return h('div', { class: 'breakdowns' },
    table('By close reason', ['Close reason', 'Trades', 'PnL'], reasons),
    table('By symbol', ['Symbol', 'Trades', 'Win rate', 'Profit factor', 'PnL'], assets));
}

export class PerformanceView {
  private range: Range = '30D';
  private shown = false;
  private loading = 0;
  private chart: IChartApi | null = null;
  private daily: ISeriesApi<'Histogram'> | null = null;
  private cumulative: ISeriesApi<'Line'> | null = null;
  private readonly rangeButtons = new Map<Range, HTMLButtonElement>();
  private readonly summary = h('div', { class: 'performance-summary' });
  private readonly canvas = h('div', { class: 'pnl-canvas', role: 'img', 'aria-label': 'P&L chart' });
  private readonly root = byId('performance');
  private readonly tabs = { trading: byId('vtab-trading'), performance: byId('vtab-performance') };

  constructor(
    private readonly api: Api,
    store: Store,
  ) {
    const ranges = h('div', { class: 'intervals', role: 'group', 'aria-label': 'Range' },
      RANGES.map((r) => {
        const b = h('button', { type: 'button', class: 'secondary small', onclick: () => this.setRange(r) }, r === 'all' ? 'All' : r);
        this.rangeButtons.set(r, b);
        return b;
      }));
    fill(this.root,
      h('div', { class: 'performance-head' }, h('h2', { class: 'panel-title' }, 'Performance'), ranges),
      h('div', { class: 'pnl-chart' }, h('div', { class: 'pnl-legend muted' },
        h('span', { class: 'key key-daily' }), 'Daily P&L', h('span', { class: 'key key-cumulative' }), 'Cumulative'), this.canvas),
      this.summary);
    this.markRange();
    this.tabs.trading.addEventListener('click', () => this.show(false));
    this.tabs.performance.addEventListener('click', () => this.show(true));
    store.subscribe((state, changed) => {
      if (changed.has('token') && !state.token) this.show(false);
      else if (this.shown && changed.has('closed')) void this.load();
    });
    this.show(false);
  }

  private show(on: boolean): void {
    this.shown = on;
    for (const [key, tab] of Object.entries(this.tabs)) {
      const selected = (key === 'performance') === on;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
    }
    this.root.hidden = !on;
    document.body.classList.toggle('showing-performance', on);
    if (on) {
      this.ensureChart();
      void this.load();
    }
    window.dispatchEvent(new Event('resize'));
  }

  private setRange(r: Range): void {
    this.range = r;
    this.markRange();
    void this.load();
  }

  private markRange(): void {
    for (const [r, b] of this.rangeButtons) b.setAttribute('aria-pressed', String(r === this.range));
  }

  private ensureChart(): void {
    if (this.chart) return;
    this.chart = createChart(this.canvas, {
      autoSize: true,
      layout: { background: { color: '#131722' }, textColor: '#c3c8d4', fontSize: 11 },
      grid: { vertLines: { color: '#1e222d' }, horzLines: { color: '#1e222d' } },
      timeScale: { borderColor: '#2a2e39', timeVisible: false },
      rightPriceScale: { borderColor: '#2a2e39' },
      handleScroll: false,
      handleScale: false,
    });
    this.daily = this.chart.addSeries(HistogramSeries, { priceLineVisible: false, lastValueVisible: false });
    this.cumulative = this.chart.addSeries(LineSeries, { color: '#2962ff', lineWidth: 2, priceLineVisible: false });
  }

  /** Loads both answers for the current range; an older answer never replaces a newer one. */
  private async load(): Promise<void> {
    const ticket = ++this.loading;
    const from = rangeStart(this.range, Date.now());
    try {
      const [stats, series] = await Promise.all([this.api.stats(from), this.api.pnl('1d', from)]);
      if (ticket !== this.loading) return;
      fill(this.summary, figures(stats.overall), breakdowns(stats));
      this.drawChart(series);
    } catch (e) {
      if (ticket !== this.loading) return;
      if (e instanceof ApiError && e.status === 401) return;
      fill(this.summary, h('p', { class: 'form-error', role: 'alert' }, e instanceof ApiError ? e.message : 'Could not load the figures.'));
    }
  }

  private drawChart(series: PnlSeries): void {
    const { bars, line, label } = chartData(series);
    this.daily?.setData(bars.map((b) => ({ ...b, time: b.time as UTCTimestamp })));
    this.cumulative?.setData(line.map((p) => ({ ...p, time: p.time as UTCTimestamp })));
    this.chart?.timeScale().fitContent();
    this.canvas.setAttribute('aria-label', label);
  }
}
