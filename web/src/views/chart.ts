/**
 * The candle chart (TradingView lightweight-charts v5): candles with a volume pane, the
 * interval switch, history from /candles with older candles loaded on scroll-left, the last
 * candle polled live, an OHLC legend following the crosshair, bid/ask lines, and for the
 * trader's positions on this asset: entry, SL, TP and liquidation lines plus open/close markers.
 * SL/TP lines carry a handle that modifies the position (chart-handles.ts). Pending orders get
 * a line at their price (chart-orders.ts).
 */
import {
  CandlestickSeries,
  type CandlestickData,
  createChart,
  createSeriesMarkers,
  HistogramSeries,
  type IChartApi,
  type IPriceLine,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  LineStyle,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from 'lightweight-charts';
import Big from 'big.js';
import { type Api, type Candle, type ClosedPosition, type Interval, INTERVALS, type OpenPosition } from '../api/client';
import { fill, h } from '../dom';
import { formatDecimal } from '../money';
import type { PendingOrder } from '../api/orders';
import type { Store } from '../store';
import { LevelHandles, type ModifyLevel } from './chart-handles';
import { OrderLines } from './chart-orders';
import { REASONS } from './positions';

const SECONDS: Record<Interval, number> = {
  '1m': 60, '5m': 300, '15m': 900, '30m': 1800, '1h': 3600, '4h': 14400, '1d': 86400, '1w': 604800,
};
/** Candles per request: the first screenful and each step back in history. */
const PAGE = 300;
/** Empty bars right of the newest candle, so its markers and labels are not cut off. */
const RIGHT_OFFSET = 6;
const UP = '#26a69a';
const DOWN = '#ef5350';

export class ChartView {
  private readonly chart: IChartApi;
  private readonly candles: ISeriesApi<'Candlestick'>;
  private readonly volume: ISeriesApi<'Histogram'>;
  private readonly markers: ISeriesMarkersPluginApi<Time>;
  private readonly orderLines: OrderLines;
  private readonly overlay: HTMLElement;
  private readonly canvasBox: HTMLElement;
  private readonly legend: HTMLElement;
  private readonly intervals: HTMLElement;
  private asset = '';
  private interval: Interval = '1m';
  private data: Candle[] = [];
  private loadingOlder = false;
  private exhausted = false;
  private generation = 0;
  private bidLine: IPriceLine | null = null;
  private askLine: IPriceLine | null = null;
  private lines: IPriceLine[] = [];
  private readonly handles: LevelHandles;
  /** Entry, SL and TP levels shown, kept inside the price scale (liquidation may lie far off). */
  private levels: number[] = [];
  /** The live bid and ask, kept inside the price scale too. */
  private quoteLevels: number[] = [];
  /** The position lines, for the chart's accessible description. */
  private lineNames: string[] = [];

  constructor(
    root: HTMLElement,
    private readonly api: Api,
    private readonly store: Store,
    modify: ModifyLevel,
  ) {
    this.intervals = h('div', { class: 'intervals', role: 'group', 'aria-label': 'Chart interval' });
    this.legend = h('div', { class: 'legend num', 'aria-live': 'off' });
    const canvasBox = h('div', { class: 'chart-canvas', role: 'img', 'aria-label': 'Candlestick chart' });
    this.canvasBox = canvasBox;
    this.overlay = h('div', { class: 'chart-overlay' });
    fill(root, h('div', { class: 'chart-toolbar' }, this.intervals), h('div', { class: 'chart-area' }, canvasBox, this.legend, this.overlay));
    this.chart = createChart(canvasBox, {
      autoSize: true,
      layout: { background: { color: '#131722' }, textColor: '#c3c8d4', fontSize: 11, panes: { separatorColor: '#2a2e39' } },
      grid: { vertLines: { color: '#1e222d' }, horzLines: { color: '#1e222d' } },
      timeScale: { timeVisible: true, secondsVisible: false, borderColor: '#2a2e39', rightOffset: RIGHT_OFFSET },
      rightPriceScale: { borderColor: '#2a2e39' },
      crosshair: { mode: 0 },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
      // The bid and ask lines mark the price; the last trade's own line would be a third.
      lastValueVisible: false, priceLineVisible: false,
    });
    this.candles.applyOptions({
      autoscaleInfoProvider: (original: () => { priceRange: { minValue: number; maxValue: number } } | null) => {
        const r = original();
        const keep = [...this.levels, ...this.quoteLevels, ...this.orderLines.levels];
        if (!r || !keep.length) return r;
        return {
          ...r,
          priceRange: {
            minValue: Math.min(r.priceRange.minValue, ...keep),
            maxValue: Math.max(r.priceRange.maxValue, ...keep),
          },
        };
      },
    });
    this.volume = this.chart.addSeries(HistogramSeries, { priceFormat: { type: 'volume' }, color: '#3b4b6b', lastValueVisible: false, priceLineVisible: false }, 1);
    this.chart.panes()[1]?.setStretchFactor(0.25);
    this.markers = createSeriesMarkers(this.candles, []);
    this.orderLines = new OrderLines(this.candles);
    this.handles = new LevelHandles(this.chart, this.candles, this.overlay, modify, () => this.decimals());
    this.chart.subscribeCrosshairMove((param) => this.showLegend(param.time as number | undefined));
    this.chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
      if (range && range.from < 10) void this.loadOlder();
    });
    this.renderIntervals();
    window.setInterval(() => void this.pollLast(), 2000);
  }

  private renderIntervals(): void {
    fill(this.intervals, INTERVALS.map((i) =>
      h('button', { type: 'button', class: 'interval', 'aria-pressed': String(i === this.interval), onclick: () => void this.show(this.asset, i) }, i)));
  }

  private decimals(): number {
    return this.store.asset(this.asset)?.priceDecimals ?? 2;
  }

  /** Loads the newest candles of `asset` at `interval` and draws them. */
  async show(asset: string, interval: Interval = this.interval): Promise<void> {
    this.generation += 1;
    const gen = this.generation;
    this.asset = asset;
    this.interval = interval;
    this.exhausted = false;
    this.renderIntervals();
    const d = this.decimals();
    this.candles.applyOptions({ priceFormat: { type: 'price', precision: d, minMove: 10 ** -d } });
    this.bidLine = this.replaceLine(this.bidLine, null);
    this.askLine = this.replaceLine(this.askLine, null);
    this.quoteLevels = [];
    let candles: Candle[] = [];
    try {
      candles = await this.api.candles(asset, interval, undefined, PAGE);
    } catch {
      candles = [];
    }
    if (gen !== this.generation) return;
    this.data = candles;
    this.draw();
    this.chart.timeScale().scrollToPosition(RIGHT_OFFSET, false); // the newest candles in view, at once
    this.showLegend(undefined);
    this.setPositions(this.store.state.open, this.store.state.closed);
    this.setOrders(this.store.state.orders);
    const q = this.store.quote(asset);
    if (q) this.onQuote(q.bid, q.ask);
  }

  private draw(): void {
    this.candles.setData(this.data.map(toBar));
    this.volume.setData(this.data.map(toVolume));
    this.describe();
  }

  /** What a screen reader (and the browser test) learns about the chart. */
  private describe(): void {
    const names = [...this.lineNames, ...this.orderLines.names];
    const lines = names.length ? `; lines: ${names.join(', ')}` : '';
    const count = `${this.data.length} candle${this.data.length === 1 ? '' : 's'}`;
    this.canvasBox.setAttribute('aria-label', `Candlestick chart of ${this.asset} (${this.interval}), ${count}${lines}`);
  }

  private async loadOlder(): Promise<void> {
    if (this.loadingOlder || this.exhausted || !this.data.length) return;
    this.loadingOlder = true;
    const gen = this.generation;
    try {
      const older = await this.api.candles(this.asset, this.interval, this.data[0].time - SECONDS[this.interval], PAGE);
      if (gen !== this.generation) return;
      if (!older.length) this.exhausted = true;
      else {
        this.data = [...older, ...this.data];
        this.draw();
        this.setPositions(this.store.state.open, this.store.state.closed);
      }
    } catch {
      // Scrolling further left tries again.
    } finally {
      this.loadingOlder = false;
    }
  }

  /** Updates (or appends) the newest candles. */
  private async pollLast(): Promise<void> {
    if (!this.asset || document.hidden) return;
    const gen = this.generation;
    let latest: Candle[];
    try {
      latest = await this.api.candles(this.asset, this.interval, undefined, 2);
    } catch {
      return;
    }
    if (gen !== this.generation) return;
    for (const c of latest) {
      const last = this.data[this.data.length - 1];
      if (last && c.time < last.time) continue;
      if (last && c.time === last.time) this.data[this.data.length - 1] = c;
      else this.data.push(c);
      this.candles.update(toBar(c));
      this.volume.update(toVolume(c));
    }
    this.showLegend(undefined);
  }

  private showLegend(time: number | undefined): void {
    const c = time === undefined ? this.data[this.data.length - 1] : this.data.find((x) => x.time === time);
    const d = this.decimals();
    if (!c) {
      fill(this.legend, h('strong', {}, `${this.asset} · ${this.interval}`), ' no trades yet');
      return;
    }
    const tone = new Big(c.close).gte(c.open) ? 'up' : 'down';
    const field = (k: string, v: string) => h('span', {}, `${k} `, h('b', { class: tone }, formatDecimal(v, d)));
    fill(this.legend, h('strong', {}, `${this.asset} · ${this.interval}`),
      field('O', c.open), field('H', c.high), field('L', c.low), field('C', c.close),
      h('span', {}, 'Vol ', h('b', {}, c.volume)));
  }

  /** The candle series and its canvas box, for overlays of other modules (price alerts). */
  get series(): ISeriesApi<'Candlestick'> {
    return this.candles;
  }

  get canvas(): HTMLElement {
    return this.canvasBox;
  }

  private replaceLine(line: IPriceLine | null, options: Parameters<ISeriesApi<'Candlestick'>['createPriceLine']>[0] | null): IPriceLine | null {
    if (line) this.candles.removePriceLine(line);
    return options ? this.candles.createPriceLine(options) : null;
  }

  onQuote(bid: string, ask: string): void {
    this.quoteLevels = [Number(bid), Number(ask)];
    const line = (price: string, title: string, color: string) => ({
      price: Number(price), color, lineWidth: 1 as const, lineStyle: LineStyle.Dotted, axisLabelVisible: true, title,
    });
    if (this.bidLine) this.bidLine.applyOptions({ price: Number(bid) });
    else this.bidLine = this.replaceLine(null, line(bid, 'Bid', '#ef9a9a'));
    if (this.askLine) this.askLine.applyOptions({ price: Number(ask) });
    else this.askLine = this.replaceLine(null, line(ask, 'Ask', '#80cbc4'));
  }

  private bucket(ms: number): UTCTimestamp {
    const s = SECONDS[this.interval];
    return (Math.floor(ms / 1000 / s) * s) as UTCTimestamp;
  }

  /** Lines and markers of the trader's positions on the shown asset. */
  setPositions(open: OpenPosition[], closed: ClosedPosition[]): void {
    if (this.handles.dragging) return;
    for (const l of this.lines) this.candles.removePriceLine(l);
    this.lines = [];
    this.handles.clear();
    const mine = open.filter((p) => p.asset === this.asset);
    const described: string[] = [];
    this.levels = mine.flatMap((p) => [p.openPrice, p.stopLoss, p.takeProfit]).filter((v): v is string => v !== null).map(Number);
    const d = this.decimals();
    // SL/TP lines carry a handle with their label, so the line itself has no title.
    const add = (price: string | null, title: string, color: string, style: LineStyle, titled = true) => {
      if (price === null) return null;
      described.push(`${title} ${formatDecimal(price, d)}`);
      const line = this.candles.createPriceLine({ price: Number(price), color, lineWidth: 1, lineStyle: style, axisLabelVisible: true, title: titled ? title : '' });
      this.lines.push(line);
      return line;
    };
    for (const p of mine) {
      add(p.openPrice, `#${p.id} ${p.side} entry`, '#5b9cf6', LineStyle.Dashed);
      add(p.liquidationPrice, `#${p.id} liquidation`, '#ff9800', LineStyle.SparseDotted);
      const sl = add(p.stopLoss, `#${p.id} stop-loss`, DOWN, LineStyle.Solid, false);
      const tp = add(p.takeProfit, `#${p.id} take-profit`, UP, LineStyle.Solid, false);
      if (sl && p.stopLoss) this.handles.add(p, 'stopLoss', sl, p.stopLoss);
      if (tp && p.takeProfit) this.handles.add(p, 'takeProfit', tp, p.takeProfit);
    }
    const markers: SeriesMarker<Time>[] = [];
    for (const p of mine) {
      markers.push({ time: this.bucket(p.openedAt), position: p.side === 'buy' ? 'belowBar' : 'aboveBar', shape: p.side === 'buy' ? 'arrowUp' : 'arrowDown', color: p.side === 'buy' ? UP : DOWN, text: `#${p.id} ${p.side}` });
    }
    for (const p of closed.filter((c) => c.asset === this.asset)) {
      // A partial close's position has its open marker already (open, or its final close).
      if (!p.partial) markers.push({ time: this.bucket(p.openedAt), position: p.side === 'buy' ? 'belowBar' : 'aboveBar', shape: p.side === 'buy' ? 'arrowUp' : 'arrowDown', color: '#787b86', text: `#${p.id}` });
      markers.push({ time: this.bucket(p.closedAt), position: 'aboveBar', shape: 'circle', color: '#b2b5be', text: `#${p.id} ${REASONS[p.closeReason] ?? p.closeReason}${p.partial ? ' (part)' : ''}` });
    }
    markers.sort((a, b) => (a.time as number) - (b.time as number));
    this.lineNames = described;
    this.describe();
    this.markers.setMarkers(markers);
  }

  /** Lines of the trader's pending orders on the shown asset. */
  setOrders(orders: PendingOrder[]): void {
    this.orderLines.set(orders, this.asset, this.decimals());
    this.describe();
  }
}

function toBar(c: Candle): CandlestickData<Time> {
  return { time: c.time as UTCTimestamp, open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close) };
}

function toVolume(c: Candle) {
  const up = new Big(c.close).gte(c.open);
  return { time: c.time as UTCTimestamp, value: Number(c.volume), color: up ? 'rgba(38,166,154,0.45)' : 'rgba(239,83,80,0.45)' };
}
