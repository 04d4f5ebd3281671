/**
 * The pure parts of the Performance tab: where each range starts, percentages with big.js,
 * and the chart's series from the API's P&L points.
 */
import Big from 'big.js';
import type { PnlSeries } from '../api/client';
import { formatSigned } from '../money';

export type Range = '7D' | '30D' | '90D' | 'all';
export const RANGES: Range[] = ['7D', '30D', '90D', 'all'];

const DAY_MS = 86_400_000;
const DAYS: Record<Exclude<Range, 'all'>, number> = { '7D': 7, '30D': 30, '90D': 90 };

/** Close reasons as the page names them (every reason the API lists). */
export const REASON_NAMES: Record<string, string> = {
  manual: 'Manual',
  stop_loss: 'Stop-loss',
  take_profit: 'Take-profit',
  trailing_stop: 'Trailing stop',
  liquidation: 'Liquidation',
};

/**
 * The first ms of a range: N whole UTC days ending with today (7D is today and the 6 days
 * before it); undefined for all (the API then starts at the first trade).
 */
export function rangeStart(range: Range, nowMs: number): number | undefined {
  if (range === 'all') return undefined;
  const today = nowMs - (((nowMs % DAY_MS) + DAY_MS) % DAY_MS);
  return today - (DAYS[range] - 1) * DAY_MS;
}

/** "0.4286" -> "42.86%"; null (no trades) -> "—". */
export function percent(fraction: string | null): string {
  if (fraction === null) return '—';
  return `${new Big(fraction).times(100).toFixed(2)}%`;
}

const UP = 'rgba(38, 166, 154, 0.8)';
const DOWN = 'rgba(239, 83, 80, 0.8)';

/**
 * The histogram bars (a day's PnL, green or red), the cumulative line (times in unix
 * seconds) and a text description of the chart for assistive technology and tests.
 */
export function chartData(series: PnlSeries): {
  bars: { time: number; value: number; color: string }[];
  line: { time: number; value: number }[];
  label: string;
} {
  const points = series.points;
  const bars = points.map((p) => ({
    time: p.time / 1000,
    value: Number(p.pnl), // a chart coordinate, never shown as a figure
    color: new Big(p.pnl).lt(0) ? DOWN : UP,
  }));
  const line = points.map((p) => ({ time: p.time / 1000, value: Number(p.cumulative) }));
  const last = points.at(-1);
  const label = last
    ? `P&L chart: ${points.length} days, cumulative ${formatSigned(last.cumulative)} USD`
    : 'P&L chart: no trades in this range';
  return { bars, line, label };
}
