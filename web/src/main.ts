/**
 * The trader's page: wires the API client, the WebSocket client, the store and the views.
 * Only the functions here write the store; views re-render from it.
 */
import './styles.css';
import { Api, ApiError } from './api/client';
import { loadEndpoints } from './config';
import { byId } from './dom';
import { formatDecimal, formatSigned } from './money';
import { saveSession, savedSession, Store } from './store';
import { renderAccount } from './views/account';
import { renderAuth } from './views/auth';
import { ChartView } from './views/chart';
import { renderInstruments, renderStatus } from './views/instruments';
import { REASONS, Positions } from './views/positions';
import { Ticket } from './views/ticket';
import { toast } from './views/toast';
import { type EngineEvent, PriceSocket } from './ws';
import { setupPanels } from './panels';

async function main(): Promise<void> {
  const endpoints = await loadEndpoints();
  const api = new Api(endpoints.api);
  const session = savedSession();
  const store = new Store({
    token: session.token,
    email: session.email,
    assets: [],
    quotes: {},
    selected: 'BTC',
    connection: 'connecting',
    balance: null,
    open: [],
    closed: [],
    closedNext: null,
  });
  api.token = session.token;

  let refreshTimer: number | undefined;
  const refresh = () => {
    // Coalesce bursts (an open answer and its event) into one round of requests.
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(() => void loadAccount(), 50);
  };
  const loadAccount = async () => {
    if (!api.token) return;
    try {
      const [balance, open, closed] = await Promise.all([api.balance(), api.openPositions(), api.closedPositions(20)]);
      store.set({ balance, open, closed: closed.positions, closedNext: closed.next });
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) toast(e.message, 'error');
    }
  };
  const loadMoreClosed = async () => {
    if (!store.state.closedNext) return;
    try {
      const page = await api.closedPositions(20, store.state.closedNext);
      store.set({ closed: [...store.state.closed, ...page.positions], closedNext: page.next });
    } catch (e) {
      if (e instanceof ApiError) toast(e.message, 'error');
    }
  };

  const socket = new PriceSocket(endpoints.ws, {
    onQuote: (q) => store.set({ quotes: { ...store.state.quotes, [q.asset]: q } }),
    onEvent: (e) => onEvent(e),
    onConnection: (connection) => store.set({ connection }),
    onResync: () => refresh(),
    onUnauthorized: () => api.onUnauthorized(),
  });
  const onEvent = (e: EngineEvent) => {
    const p = e.position;
    if (e.type === 'position_closed' && p && p.close_reason && p.close_reason !== 'manual') {
      const d = store.asset(p.asset)?.priceDecimals ?? 2;
      const kind = p.close_reason === 'take_profit' ? 'success' : 'warning';
      toast(`${REASONS[p.close_reason]}: position #${p.id} (${p.side} ${p.quantity} ${p.asset}) closed at ${formatDecimal(p.close_price ?? '0', d)}, PnL ${formatSigned(p.realized_pnl ?? '0')} USD`, kind, 15000);
    }
    refresh();
  };

  const signOut = (message?: string) => {
    api.token = null;
    saveSession(null, null);
    socket.authenticate(null);
    store.set({ token: null, email: null, balance: null, open: [], closed: [], closedNext: null });
    if (message) toast(message, 'warning');
  };
  api.onUnauthorized = () => signOut('Your session has ended. Please sign in again.');

  const showApp = (signedIn: boolean) => {
    byId('auth').hidden = signedIn;
    byId('app').hidden = !signedIn;
  };
  renderAuth(api, (token, email) => {
    api.token = token;
    saveSession(token, email);
    store.set({ token, email });
    socket.authenticate(token);
    refresh();
  });

  let chart: ChartView | null = null;
  let ticket: Ticket | null = null;
  let positions: Positions | null = null;
  const select = (symbol: string) => {
    store.set({ selected: symbol });
    const asset = store.asset(symbol);
    if (asset) ticket?.setAsset(asset);
    void chart?.show(symbol);
  };

  const startViews = () => {
    chart = new ChartView(byId('chart'), api, store, async (p, kind, price) => {
      const sl = kind === 'stopLoss' ? price : p.stopLoss;
      const tp = kind === 'takeProfit' ? price : p.takeProfit;
      const problem = await positions!.saveLevels(p, sl, tp);
      if (problem) toast(`Not modified: ${problem}`, 'error');
      return problem === null;
    });
    ticket = new Ticket(store, api, refresh);
    positions = new Positions(store, api, { refresh, loadMoreClosed: () => void loadMoreClosed() });
  };

  store.subscribe((state, changed) => {
    if (changed.has('token')) {
      showApp(!!state.token);
      byId('user').textContent = state.email ?? '';
    }
    if (changed.has('assets') || changed.has('quotes') || changed.has('selected')) renderInstruments(store, select);
    if (changed.has('assets') || changed.has('quotes') || changed.has('connection')) renderStatus(store, () => socket.reconnect());
    if (changed.has('quotes') || changed.has('balance') || changed.has('open')) renderAccount(store);
    if (changed.has('quotes')) {
      ticket?.update();
      positions?.updatePnl();
      const q = state.quotes[state.selected];
      if (q) chart?.onQuote(q.bid, q.ask);
    }
    if (changed.has('balance')) ticket?.update();
    if (changed.has('open') || changed.has('closed') || changed.has('closedNext')) {
      positions?.render();
      chart?.setPositions(state.open, state.closed);
    }
  });

  byId('signout').addEventListener('click', () => signOut());
  setupPanels();
  startViews();
  showApp(!!store.state.token);
  byId('user').textContent = store.state.email ?? '';
  try {
    store.set({ assets: await api.assets() });
  } catch (e) {
    toast(e instanceof ApiError ? e.message : 'Cannot load the instruments.', 'error');
  }
  select(store.state.selected);
  socket.authenticate(store.state.token);
  socket.start();
}

void main();
