/** Short notices in a live region: closes by stop-loss, take-profit or liquidation, errors. */
import { byId, h } from '../dom';

export type ToastKind = 'info' | 'success' | 'warning' | 'error';

export function toast(message: string, kind: ToastKind = 'info', ms = 8000): void {
  const region = byId('toasts');
  const close = h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss' }, '×');
  const item = h('div', { class: `toast toast-${kind}` }, h('span', {}, message), close);
  close.addEventListener('click', () => item.remove());
  region.append(item);
  window.setTimeout(() => item.remove(), ms);
}
