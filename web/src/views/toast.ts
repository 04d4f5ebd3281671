/** Short notices in a live region: closes by stop-loss, take-profit or liquidation, errors. */
import { byId, h } from '../dom';

export type ToastKind = 'info' | 'success' | 'warning' | 'error';

/** At most this many at once: the oldest goes first, so toasts never bury the page. */
const MAX_VISIBLE = 3;
const DEFAULT_MS: Record<ToastKind, number> = { info: 6000, success: 5000, warning: 10000, error: 10000 };

export function toast(message: string, kind: ToastKind = 'info', ms = DEFAULT_MS[kind]): void {
  const region = byId('toasts');
  while (region.children.length >= MAX_VISIBLE) region.firstElementChild?.remove();
  const close = h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss' }, '×');
  const item = h('div', { class: `toast toast-${kind}` }, h('span', {}, message), close);
  close.addEventListener('click', () => item.remove());
  region.append(item);
  window.setTimeout(() => item.remove(), ms);
}
