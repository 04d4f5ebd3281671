/**
 * The handles on a position's SL/TP lines: a slider per line (drag it, or focus it and use
 * the arrow keys, then Enter; Escape puts it back) that modifies the position. A refused
 * modify snaps the line back to where it was. The handles live in an overlay above the
 * canvas and follow their lines as the chart scrolls and rescales.
 */
import type { IChartApi, IPriceLine, ISeriesApi } from 'lightweight-charts';
import Big from 'big.js';
import type { OpenPosition } from '../api/client';
import { h } from '../dom';
import { formatDecimal, type LevelKind } from '../money';

/** Sends the new level; resolves true when the engine took it. */
export type ModifyLevel = (p: OpenPosition, kind: LevelKind, price: string) => Promise<boolean>;

interface Handle {
  el: HTMLElement;
  line: IPriceLine;
  price: string;
  original: string;
}

export class LevelHandles {
  private handles: Handle[] = [];
  /** True while a handle is dragged: the chart must not redraw its lines under the pointer. */
  dragging = false;

  constructor(
    private readonly chart: IChartApi,
    private readonly series: ISeriesApi<'Candlestick'>,
    private readonly overlay: HTMLElement,
    private readonly modify: ModifyLevel,
    private readonly decimals: () => number,
  ) {
    const follow = () => {
      this.place();
      requestAnimationFrame(follow);
    };
    requestAnimationFrame(follow);
  }

  clear(): void {
    for (const hd of this.handles) hd.el.remove();
    this.handles = [];
  }

  add(p: OpenPosition, kind: LevelKind, line: IPriceLine, price: string): void {
    const name = kind === 'stopLoss' ? 'Stop-loss' : 'Take-profit';
    const el = h('div', {
      class: `line-handle handle-${kind}`,
      role: 'slider',
      tabindex: 0,
      'aria-label': `${name} of position ${p.id}`,
      title: `Drag to move the ${name.toLowerCase()} (or use the arrow keys, then Enter)`,
    });
    const handle: Handle = { el, line, price, original: price };
    const d = this.decimals();
    const setPrice = (value: string) => {
      handle.price = value;
      line.applyOptions({ price: Number(value) });
      el.textContent = `#${p.id} ${kind === 'stopLoss' ? 'SL' : 'TP'} ${formatDecimal(value, d)} ⇕`;
      el.setAttribute('aria-valuenow', value);
      el.setAttribute('aria-valuetext', formatDecimal(value, d));
    };
    const commit = async () => {
      if (handle.price === handle.original) return;
      const ok = await this.modify(p, kind, handle.price);
      if (!ok) setPrice(handle.original);
    };
    el.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      el.setPointerCapture(e.pointerId);
      this.dragging = true;
    });
    el.addEventListener('pointermove', (e) => {
      if (!el.hasPointerCapture(e.pointerId)) return;
      const y = e.clientY - this.overlay.getBoundingClientRect().top;
      const at = this.series.coordinateToPrice(y);
      if (at !== null && at > 0) setPrice(at.toFixed(d));
    });
    el.addEventListener('pointerup', (e) => {
      if (!el.hasPointerCapture(e.pointerId)) return;
      el.releasePointerCapture(e.pointerId);
      this.dragging = false;
      void commit();
    });
    el.addEventListener('keydown', (e) => {
      const step = new Big(handle.price).times('0.0005').round(d, 3).toFixed(d);
      if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
        e.preventDefault();
        const next = e.key === 'ArrowUp' ? new Big(handle.price).plus(step) : new Big(handle.price).minus(step);
        if (next.gt(0)) setPrice(next.toFixed(d));
      } else if (e.key === 'Enter') {
        e.preventDefault();
        void commit();
      } else if (e.key === 'Escape') {
        setPrice(handle.original);
      }
    });
    setPrice(price);
    this.overlay.append(el);
    this.handles.push(handle);
  }

  /** Keeps each handle on its line. */
  private place(): void {
    if (!this.handles.length) return;
    const axis = this.chart.priceScale('right').width();
    const height = this.chart.panes()[0]?.getHeight() ?? 0;
    for (const hd of this.handles) {
      const y = this.series.priceToCoordinate(Number(hd.price));
      hd.el.hidden = y === null || y < 0 || y > height;
      if (y !== null) {
        hd.el.style.top = `${y}px`;
        hd.el.style.right = `${axis + 8}px`;
      }
    }
  }
}
