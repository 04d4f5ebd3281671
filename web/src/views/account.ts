/**
 * The live account bar: balance, equity, used and free margin, margin level and floating PnL.
 * Balance and used margin come from /balance; the floating PnL is recomputed on every quote
 * from the open positions (decimal arithmetic, the engine's rounding), so equity moves live.
 */
import { byId, fill, h } from '../dom';
import {
  add,
  closeSidePrice,
  formatMoney,
  formatSigned,
  marginLevel,
  pnl,
  sign,
  subtract,
  sum,
} from '../money';
import type { Store } from '../store';

/** Each open position's floating PnL at the live close-side price (or the API's figure). */
export function livePnl(store: Store): Map<number, string> {
  const result = new Map<number, string>();
  for (const p of store.state.open) {
    const q = store.quote(p.asset);
    result.set(
      p.id,
      q ? pnl(p.side, p.openPrice, closeSidePrice(p.side, q.bid, q.ask), p.quantity) : p.unrealizedPnl,
    );
  }
  return result;
}

function item(label: string, value: string, extra = ''): HTMLElement {
  return h('div', { class: `stat ${extra}` }, h('dt', {}, label), h('dd', { class: 'num' }, value));
}

export function renderAccount(store: Store): void {
  const b = store.state.balance;
  const root = byId('account');
  if (!b) {
    fill(root);
    return;
  }
  const floating = sum([...livePnl(store).values()]);
  const equity = add(b.balance, floating);
  const level = marginLevel(equity, b.usedMargin);
  const tone = sign(floating) > 0 ? 'up' : sign(floating) < 0 ? 'down' : '';
  fill(
    root,
    item('Balance', formatMoney(b.balance)),
    item('Equity', formatMoney(equity)),
    item('Used margin', formatMoney(b.usedMargin), 'secondary-stat'),
    item('Free margin', formatMoney(subtract(b.balance, b.usedMargin))),
    item('Margin level', level === null ? '—' : `${formatMoney(level)}%`, 'secondary-stat'),
    item('Floating PnL', formatSigned(floating), tone),
  );
}
