/**
 * The trader's pending orders on the chart: one dashed line per order of the shown asset at
 * its price, titled with its number, side and type, so a trader sees where orders wait
 * relative to the candles and the bid/ask lines.
 */
import { type IPriceLine, type ISeriesApi, LineStyle } from 'lightweight-charts';
import type { PendingOrder } from '../api/orders';
import { formatDecimal } from '../money';

const BUY = '#9fa8da';
const SELL = '#f48fb1';

export class OrderLines {
  private lines: IPriceLine[] = [];
  /** "#7 buy limit 64,800.00", for the chart's accessible description. */
  names: string[] = [];
  /** The prices, kept inside the price scale. */
  levels: number[] = [];

  constructor(private readonly series: ISeriesApi<'Candlestick'>) {}

  /** Draws `orders` of `asset` (replacing the previous lines). */
  set(orders: PendingOrder[], asset: string, decimals: number): void {
    for (const l of this.lines) this.series.removePriceLine(l);
    const mine = orders.filter((o) => o.asset === asset);
    this.lines = mine.map((o) => this.series.createPriceLine({
      price: Number(o.price),
      color: o.side === 'buy' ? BUY : SELL,
      lineWidth: 1,
      lineStyle: LineStyle.LargeDashed,
      axisLabelVisible: true,
      title: `#${o.id} ${o.side} ${o.type}`,
    }));
    this.names = mine.map((o) => `#${o.id} ${o.side} ${o.type} ${formatDecimal(o.price, decimals)}`);
    this.levels = mine.map((o) => Number(o.price));
  }
}
