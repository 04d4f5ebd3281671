import { describe, expect, it } from 'vitest';
import { chartData, percent, rangeStart } from '../src/views/performance-data';

// 2026-11-25 13:14:15.678 UTC; that day starts at 1795564800000.
const NOW = 1_795_612_455_678;
const TODAY = 1_795_564_800_000;
const DAY = 86_400_000;

describe('performance ranges', () => {
  it('start N whole UTC days back, today included', () => {
    expect(rangeStart('7D', NOW)).toBe(TODAY - 6 * DAY);
    expect(rangeStart('30D', NOW)).toBe(TODAY - 29 * DAY);
    expect(rangeStart('90D', NOW)).toBe(TODAY - 89 * DAY);
    expect(rangeStart('7D', TODAY)).toBe(TODAY - 6 * DAY);
    expect(rangeStart('all', NOW)).toBeUndefined();
  });
});

describe('performance figures', () => {
  it('shows a fraction as a percentage exactly', () => {
    expect(percent('0.4286')).toBe('42.86%');
    expect(percent('1.0000')).toBe('100.00%');
    expect(percent('0.0001')).toBe('0.01%');
    expect(percent(null)).toBe('—');
  });

  it('turns P&L points into bars, a line and a description', () => {
    const series = {
      interval: '1d',
      from: TODAY - DAY,
      to: NOW,
      points: [
        { time: TODAY - DAY, trades: 1, pnl: '0.99', cumulative: '0.99' },
        { time: TODAY, trades: 1, pnl: '-2.11', cumulative: '-1.12' },
      ],
    };
    const { bars, line, label } = chartData(series);
    expect(bars.map((b) => [b.time, b.value])).toEqual([[(TODAY - DAY) / 1000, 0.99], [TODAY / 1000, -2.11]]);
    expect(bars[0].color).not.toBe(bars[1].color);
    expect(line.map((p) => p.value)).toEqual([0.99, -1.12]);
    expect(label).toBe('P&L chart: 2 days, cumulative -1.12 USD');
    expect(chartData({ ...series, points: [] }).label).toBe('P&L chart: no trades in this range');
  });
});
