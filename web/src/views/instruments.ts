/** The instruments list: live bid, ask and spread per asset; picking one drives chart and ticket. */
import { byId, fill, h } from '../dom';
import { FLAG_TITLES, quoteFlag } from '../freshness';
import { formatDecimal, spread } from '../money';
import type { Store } from '../store';

/** The price cells of each instrument, updated in place on every quote (focus stays put). */
const cells = new Map<string, { bid: HTMLElement; ask: HTMLElement; spread: HTMLElement; flag: HTMLElement }>();

export function updateQuotes(store: Store): void {
  for (const a of store.state.assets) {
    const c = cells.get(a.symbol);
    const q = store.quote(a.symbol);
    if (!c || !q) continue;
    c.bid.textContent = formatDecimal(q.bid, a.priceDecimals);
    c.ask.textContent = formatDecimal(q.ask, a.priceDecimals);
    c.spread.textContent = spread(q.bid, q.ask, a.priceDecimals);
  }
  updateFlags(store, Date.now());
}

/** Shows each instrument's `stale` / `simulated` marker as of `now` (see freshness.ts). */
export function updateFlags(store: Store, now: number): void {
  for (const a of store.state.assets) {
    const c = cells.get(a.symbol);
    if (!c) continue;
    const simulated = store.state.quotes[a.symbol]?.simulated ?? a.simulated === true;
    const flag = quoteFlag(now, store.state.quoteAt[a.symbol], simulated);
    if ((c.flag.textContent || null) === flag) continue;
    c.flag.textContent = flag ?? '';
    c.flag.hidden = flag === null;
    c.flag.className = flag ? `quote-flag quote-${flag}` : 'quote-flag';
    if (flag) c.flag.title = FLAG_TITLES[flag];
    else c.flag.removeAttribute('title');
  }
}

export function renderInstruments(store: Store, onSelect: (symbol: string) => void): void {
  const root = byId('instruments');
  const focused = document.activeElement?.getAttribute('data-symbol');
  cells.clear();
  const rows = store.state.assets.map((a) => {
    const q = store.quote(a.symbol);
    const d = a.priceDecimals;
    const selected = a.symbol === store.state.selected;
    const price = {
      bid: h('span', { class: 'num bid', title: 'Bid' }, q ? formatDecimal(q.bid, d) : '—'),
      ask: h('span', { class: 'num ask', title: 'Ask' }, q ? formatDecimal(q.ask, d) : '—'),
      spread: h('span', { class: 'num spread', title: 'Spread' }, q ? spread(q.bid, q.ask, d) : ''),
      flag: h('small', { class: 'quote-flag', hidden: true }),
    };
    cells.set(a.symbol, price);
    return h(
      'li',
      {},
      h(
        'button',
        {
          type: 'button',
          class: `instrument${selected ? ' selected' : ''}`,
          'aria-pressed': selected ? 'true' : 'false',
          'aria-label': `${a.symbol} ${a.name}`,
          'data-symbol': a.symbol,
          onclick: () => onSelect(a.symbol),
        },
        h('span', { class: 'sym' }, a.symbol, h('small', {}, a.name), price.flag),
        price.bid,
        price.ask,
        price.spread,
      ),
    );
  });
  const a = store.asset(store.state.selected);
  const info = a
    ? h('dl', { class: 'asset-info', 'aria-label': `${a.symbol} trading limits` },
      h('dt', {}, 'Max leverage'), h('dd', { class: 'num' }, `1:${a.maxLeverage}`),
      h('dt', {}, 'Quantity step'), h('dd', { class: 'num' }, a.quantityStep),
      h('dt', {}, 'Min / max'), h('dd', { class: 'num' }, `${a.minQuantity} / ${a.maxQuantity}`),
      h('dt', {}, 'Price digits'), h('dd', { class: 'num' }, String(a.priceDecimals)))
    : null;
  fill(
    root,
    h('div', { class: 'instrument-head', 'aria-hidden': 'true' }, h('span', {}, 'Symbol'), h('span', {}, 'Bid'), h('span', {}, 'Ask'), h('span', {}, 'Spread')),
    h('ul', { class: 'instrument-list' }, rows),
    info,
  );
  updateFlags(store, Date.now());
  if (focused) root.querySelector<HTMLElement>(`[data-symbol="${focused}"]`)?.focus();
}

/** The feed badges in the top bar: simulated quotes, stale or lost connection. */
let shownStatus = '';

export function renderStatus(store: Store, onReconnect: () => void): void {
  const root = byId('status');
  const simulated = Object.values(store.state.quotes).some((q) => q.simulated) ||
    store.state.assets.some((a) => a.simulated === true);
  const c = store.state.connection;
  // Rebuilt only when it changes: quotes arrive many times a second.
  if (`${simulated}:${c}` === shownStatus) return;
  shownStatus = `${simulated}:${c}`;
  const label = { connecting: 'Connecting…', live: 'Live', stale: 'Prices stale', disconnected: 'Disconnected' }[c];
  fill(
    root,
    simulated ? h('span', { class: 'badge badge-sim', title: 'Quotes come from a simulated random walk, not Binance' }, 'Simulated feed') : null,
    h('span', { class: `badge badge-${c}`, role: 'status' }, label),
    c === 'live' || c === 'connecting' ? null : h('button', { type: 'button', class: 'link', onclick: onReconnect }, 'Reconnect'),
  );
}
