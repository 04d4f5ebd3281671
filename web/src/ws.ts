/**
 * The WebSocket client of the price hub: quotes for every asset, the signed-in user's own
 * engine events (and fired price alerts), and a reconnect with exponential backoff and jitter
 * whenever the socket drops. It reports its state (connecting, live, stale, disconnected):
 * stale when no quote has come for `staleAfterMs` although the socket is open.
 */
import type { Alert } from './api/alerts';

export interface Quote {
  asset: string;
  bid: string;
  ask: string;
  ts: number;
  simulated: boolean;
}

/** A position as the engine's events carry it (snake_case, unlike the HTTP API). */
export interface EventPosition {
  id: number;
  asset: string;
  side: 'buy' | 'sell';
  quantity: string;
  open_price: string;
  stop_loss: string | null;
  take_profit: string | null;
  liquidation_price: string | null;
  close_price?: string;
  realized_pnl?: string;
  close_reason?: 'manual' | 'stop_loss' | 'take_profit' | 'liquidation' | 'trailing_stop';
  trailing_distance?: string | null;
}

/** A pending order as the engine's events carry it (snake_case too). */
export interface EventOrder {
  id: number;
  asset: string;
  side: 'buy' | 'sell';
  order_type: 'limit' | 'stop';
  price: string;
  quantity: string;
  expires_at: number | null;
}

export interface EngineEvent {
  type:
    | 'account_created' | 'position_opened' | 'position_modified' | 'position_closed'
    | 'position_partially_closed' | 'order_placed' | 'order_modified' | 'order_cancelled' | 'order_filled';
  position?: EventPosition;
  order?: EventOrder;
  /** Why an order was cancelled. */
  reason?: 'user' | 'expired' | 'insufficient_margin';
  /** A partial close: the part closed and what stays open. */
  closed?: EventPosition;
  remaining?: EventPosition;
}

export type Connection = 'connecting' | 'live' | 'stale' | 'disconnected';

export interface WsHandlers {
  onQuote(q: Quote): void;
  onEvent(e: EngineEvent): void;
  onConnection(state: Connection): void;
  /** After every (re)connect, once authenticated: whatever was missed should be reloaded. */
  onResync(): void;
  /** The hub refused the token (expired or revoked). */
  onUnauthorized(): void;
  /** One of the user's price alerts fired (`{"type":"alert","alert":{…}}`). */
  onAlert?(alert: Alert): void;
}

export class PriceSocket {
  private socket: WebSocket | null = null;
  private token: string | null = null;
  private attempt = 0;
  private lastQuote = 0;
  private state: Connection = 'connecting';
  private retryTimer: number | undefined;
  private readonly watchdog: number;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly handlers: WsHandlers,
    // The hub only sends a quote when bid or ask changed, so a quiet market is silent too:
    // only a long silence counts as stale.
    private readonly staleAfterMs = 30_000,
  ) {
    this.watchdog = window.setInterval(() => this.checkStale(), 1000);
  }

  start(): void {
    this.connect();
  }

  /** Sends the token now (when connected) and after every reconnect; null stops events. */
  authenticate(token: string | null): void {
    const had = this.token;
    this.token = token;
    if (token && this.socket?.readyState === WebSocket.OPEN) this.send({ op: 'auth', token });
    // The hub has no "unauth": reconnect to drop a previous user's events.
    if (had && !token) this.socket?.close();
  }

  stop(): void {
    this.stopped = true;
    window.clearInterval(this.watchdog);
    window.clearTimeout(this.retryTimer);
    this.socket?.close();
  }

  /** Drops the connection now (for a trader's "reconnect" button). */
  reconnect(): void {
    window.clearTimeout(this.retryTimer);
    this.attempt = 0;
    if (this.socket) this.socket.close();
    else this.connect();
  }

  private setState(next: Connection): void {
    if (next !== this.state) {
      this.state = next;
      this.handlers.onConnection(next);
    }
  }

  private send(message: unknown): void {
    this.socket?.send(JSON.stringify(message));
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState(this.attempt === 0 ? 'connecting' : 'disconnected');
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.lastQuote = Date.now();
      this.setState('live');
      if (this.token) this.send({ op: 'auth', token: this.token });
      else this.handlers.onResync();
    };
    socket.onmessage = (m) => this.receive(String(m.data));
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setState('disconnected');
      this.scheduleRetry();
    };
    // onclose follows every error; nothing else to do here (and nothing to log).
    socket.onerror = () => {};
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    const ceiling = Math.min(30_000, 500 * 2 ** this.attempt);
    this.attempt += 1;
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.retryTimer = window.setTimeout(() => this.connect(), delay);
  }

  private receive(text: string): void {
    let msg: { type?: string; event?: EngineEvent; code?: string; alert?: Alert } & Partial<Quote>;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.type === 'quote') {
      this.lastQuote = Date.now();
      if (this.state === 'stale') this.setState('live');
      this.handlers.onQuote(msg as Quote);
    } else if (msg.type === 'event' && msg.event) {
      this.handlers.onEvent(msg.event);
    } else if (msg.type === 'alert' && msg.alert) {
      this.handlers.onAlert?.(msg.alert);
    } else if (msg.type === 'authenticated') {
      this.handlers.onResync();
    } else if (msg.type === 'error' && msg.code === 'unauthorized' && this.token) {
      this.handlers.onUnauthorized();
    }
  }

  private checkStale(): void {
    if (this.state === 'live' && Date.now() - this.lastQuote > this.staleAfterMs) {
      this.setState('stale');
    }
  }
}
