/**
 * What a trader is told when a pending order changes without them clicking anything: it
 * filled, it expired, or it was cancelled for lack of margin when it triggered. Their own
 * cancels and changes get their toast from the button, so those events say nothing here.
 */
import { formatDecimal } from '../money';
import type { EngineEvent } from '../ws';
import type { ToastKind } from './toast';

export interface Notice {
  text: string;
  kind: ToastKind;
}

/** The notice for an order event, or null (not an order event, or the trader's own action). */
export function orderNotice(e: EngineEvent, priceDecimals: (asset: string) => number): Notice | null {
  const o = e.order;
  if (!o) return null;
  const what = `#${o.id} (${o.side} ${o.order_type} ${o.quantity} ${o.asset} at ${formatDecimal(o.price, priceDecimals(o.asset))})`;
  if (e.type === 'order_filled' && e.position) {
    const p = e.position;
    const at = formatDecimal(p.open_price, priceDecimals(p.asset));
    return { text: `Order ${what} filled: position #${p.id} opened at ${at}`, kind: 'success' };
  }
  if (e.type === 'order_cancelled' && e.reason === 'expired') {
    return { text: `Order ${what} expired and was cancelled`, kind: 'warning' };
  }
  if (e.type === 'order_cancelled' && e.reason === 'insufficient_margin') {
    return { text: `Order ${what} triggered but did not fit your free margin: cancelled`, kind: 'error' };
  }
  return null;
}
