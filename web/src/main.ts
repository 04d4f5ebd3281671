/**
 * The trader's page: wires the API client, the WebSocket client, the store and the views.
 * Only the `App` writes the store; views re-render from it.
 */
import './styles.css';
import { Api, ApiError } from './api/client';
import { pendingOrders } from './api/orders';
import { type Endpoints, loadEndpoints } from './config';
import { byId } from './dom';
import { formatDecimal, formatSigned, type LevelKind } from './money';
import { setupPanels, showPanel } from './panels';
import { saveSession, savedSession, type State, Store } from './store';
import { renderAccount } from './views/account';
import { AlertsView } from './views/alerts';
import { renderAuth } from './views/auth';
import { ChartView } from './views/chart';
import { renderInstruments, renderStatus, updateFlags, updateQuotes } from './views/instruments';
import { orderNotice } from './views/order-events';
import { Positions, REASONS } from './views/positions';
import { PerformanceView } from './views/performance';
import { Ticket } from './views/ticket';
import { toast } from './views/toast';
import { type EngineEvent, PriceSocket } from './ws';
import type { OpenPosition } from './api/client';

class App {
  readonly api: Api;
  readonly store: Store;
  readonly socket: PriceSocket;
  private chart: ChartView | null = null;
  private ticket: Ticket | null = null;
  private positions: Positions | null = null;
  private alerts: AlertsView | null = null;
  private refreshTimer: number | undefined;

  constructor(endpoints: Endpoints) {
    const session = savedSession();
    this.api = new Api(endpoints.api);
    this.api.token = session.token;
    this.api.onUnauthorized = () => this.signOut('Your session has ended. Please sign in again.');
    this.store = new Store({
      token: session.token, email: session.email, assets: [], quotes: {}, quoteAt: {}, selected: 'BTC',
      connection: 'connecting', balance: null, open: [], closed: [], closedNext: null, orders: [],
    });
    this.socket = new PriceSocket(endpoints.ws, {
      onQuote: (q) => this.store.set({
        quotes: { ...this.store.state.quotes, [q.asset]: q },
        quoteAt: { ...this.store.state.quoteAt, [q.asset]: Date.now() },
      }),
      onEvent: (e) => this.onEvent(e),
      onConnection: (connection) => this.store.set({ connection }),
      onResync: () => {
        this.refresh();
        void this.alerts?.load();
      },
      onAlert: (a) => this.alerts?.onFired(a),
      onUnauthorized: () => this.api.onUnauthorized(),
    });
  }

  /** Reloads balance and positions; bursts (an answer and its event) become one round. */
  refresh(): void {
    window.clearTimeout(this.refreshTimer);
    this.refreshTimer = window.setTimeout(() => void this.loadAccount(), 50);
  }

  private async loadAccount(): Promise<void> {
    if (!this.api.token) return;
    try {
      const [balance, open, closed, orders] = await Promise.all([
        this.api.balance(), this.api.openPositions(), this.api.closedPositions(20), pendingOrders(this.api),
      ]);
      this.store.set({ balance, open, closed: closed.positions, closedNext: closed.next, orders });
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) toast(e.message, 'error');
    }
  }

  private async loadMoreClosed(): Promise<void> {
    const before = this.store.state.closedNext;
    if (!before) return;
    try {
      const page = await this.api.closedPositions(20, before);
      this.store.set({ closed: [...this.store.state.closed, ...page.positions], closedNext: page.next });
    } catch (e) {
      if (e instanceof ApiError) toast(e.message, 'error');
    }
  }

  /** A private engine event: a toast for SL/TP/liquidation closes, then fresh figures. */
  private onEvent(e: EngineEvent): void {
    const p = e.position;
    if (e.type === 'position_closed' && p?.close_reason && p.close_reason !== 'manual') {
      const d = this.store.asset(p.asset)?.priceDecimals ?? 2;
      const kind = p.close_reason === 'take_profit' ? 'success' : 'warning';
      const at = formatDecimal(p.close_price ?? '0', d);
      toast(`${REASONS[p.close_reason]}: position #${p.id} (${p.side} ${p.quantity} ${p.asset}) closed at ${at}, PnL ${formatSigned(p.realized_pnl ?? '0')} USD`, kind, 15000);
    }
    const notice = orderNotice(e, (asset) => this.store.asset(asset)?.priceDecimals ?? 2);
    if (notice) toast(notice.text, notice.kind, 15000);
    this.refresh();
  }

  signIn(token: string, email: string): void {
    this.api.token = token;
    saveSession(token, email);
    this.store.set({ token, email });
    this.socket.authenticate(token);
    this.refresh();
  }

  signOut(message?: string): void {
    this.api.token = null;
    saveSession(null, null);
    this.socket.authenticate(null);
    this.store.set({ token: null, email: null, balance: null, open: [], closed: [], closedNext: null, orders: [] });
    if (message) toast(message, 'warning');
  }

  private select(symbol: string): void {
    this.store.set({ selected: symbol });
    const asset = this.store.asset(symbol);
    if (asset) this.ticket?.setAsset(asset);
    void this.chart?.show(symbol);
  }

  /** A dragged SL/TP line: the other level stays as it is. */
  private async modifyLevel(p: OpenPosition, kind: LevelKind, price: string): Promise<boolean> {
    const sl = kind === 'stopLoss' ? price : p.stopLoss;
    const tp = kind === 'takeProfit' ? price : p.takeProfit;
    const problem = (await this.positions?.saveLevels(p, sl, tp)) ?? 'not ready';
    if (problem) toast(`Not modified: ${problem}`, 'error');
    return problem === null;
  }

  private render(state: State, changed: Set<keyof State>): void {
    const any = (...keys: (keyof State)[]) => keys.some((k) => changed.has(k));
    if (any('token')) this.showSignedIn();
    if (any('assets', 'selected')) {
      renderInstruments(this.store, (s) => {
        this.select(s);
        showPanel('chart');
      });
    }
    else if (any('quotes')) updateQuotes(this.store);
    if (any('assets', 'quotes', 'connection')) renderStatus(this.store, () => this.socket.reconnect());
    if (any('quotes', 'balance', 'open')) renderAccount(this.store);
    if (any('quotes')) {
      this.ticket?.update();
      this.positions?.updatePnl();
      const q = state.quotes[state.selected];
      if (q) this.chart?.onQuote(q.bid, q.ask);
    }
    if (any('balance')) this.ticket?.update();
    if (any('open', 'closed', 'closedNext', 'orders')) {
      this.positions?.render();
      this.chart?.setPositions(state.open, state.closed);
    }
    if (any('orders')) this.chart?.setOrders(state.orders);
  }

  private showSignedIn(): void {
    const signedIn = !!this.store.state.token;
    byId('auth').hidden = signedIn;
    byId('app').hidden = !signedIn;
    byId('user').textContent = this.store.state.email ?? '';
  }

  async start(): Promise<void> {
    renderAuth(this.api, (token, email) => this.signIn(token, email));
    this.chart = new ChartView(byId('chart'), this.api, this.store, (p, kind, price) => this.modifyLevel(p, kind, price));
    this.ticket = new Ticket(this.store, this.api, () => this.refresh());
    const alertsRoot = document.createElement('div');
    byId('panel-ticket').append(alertsRoot);
    this.alerts = new AlertsView(alertsRoot, this.api, this.store, this.chart);
    this.positions = new Positions(this.store, this.api, { refresh: () => this.refresh(), loadMoreClosed: () => void this.loadMoreClosed() });
    new PerformanceView(this.api, this.store);
    this.store.subscribe((state, changed) => this.render(state, changed));
    byId('signout').addEventListener('click', () => this.signOut());
    setupPanels();
    this.showSignedIn();
    try {
      const assets = await this.api.assets();
      // The engine's last prices: their age counts from now until the hub sends newer ones.
      const quoteAt = Object.fromEntries(assets.filter((a) => a.bid).map((a) => [a.symbol, Date.now()]));
      this.store.set({ assets, quoteAt: { ...quoteAt, ...this.store.state.quoteAt } });
    } catch (e) {
      toast(e instanceof ApiError ? e.message : 'Cannot load the instruments.', 'error');
    }
    this.select(this.store.state.selected);
    this.socket.authenticate(this.store.state.token);
    this.socket.start();
    this.refresh();
    // A quote goes stale by silence, with no event: re-judge the markers every second.
    window.setInterval(() => updateFlags(this.store, Date.now()), 1000);
    // A trailing stop moves without an event on every tick: reload while one is open.
    window.setInterval(() => {
      if (!document.hidden && this.store.state.open.some((p) => p.trailingDistance)) this.refresh();
    }, 3000);
  }
}

void loadEndpoints().then((endpoints) => new App(endpoints).start());
