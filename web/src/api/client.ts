/**
 * The HTTP API client, typed from the OpenAPI document (`schema.d.ts` is generated from
 * functions/openapi.json by `npm run gen:api`). Every error answer becomes an `ApiError`
 * carrying the API's code and a message a trader can act on; a 401 also signs the user out
 * (through `onUnauthorized`).
 */
import type { paths } from './schema';

// Types by operation (path, method, status), not by schema name: the names are the generator's
// choice, the operations are the contract.
export type Body<P extends keyof paths, M extends keyof paths[P], S extends number> = paths[P][M] extends {
  responses: { [K in S]: { content: { 'application/json': infer T } } };
}
  ? T
  : never;
export type RequestBody<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer T } };
}
  ? T
  : never;

export type Asset = Body<'/api/v1/assets', 'get', 200>['assets'][number];
export type Balance = Body<'/api/v1/balance', 'get', 200>;
export type Position = Body<'/api/v1/trade/open', 'post', 201>['position'];
export type OpenPosition = Body<'/api/v1/trade/open', 'get', 200>['positions'][number];
export type ClosedPosition = Body<'/api/v1/trade/closed', 'get', 200>['positions'][number];
export type Candle = Body<'/api/v1/candles', 'get', 200>['candles'][number];
export type OpenRequest = RequestBody<'/api/v1/trade/open', 'post'>;
export type SignedIn = Body<'/api/v1/auth/signin', 'post', 200>;
type SignedUp = Body<'/api/v1/auth/signup', 'post', 201>;
export type AccountStats = Body<'/api/v1/account/stats', 'get', 200>;
export type PnlSeries = Body<'/api/v1/account/pnl', 'get', 200>;

/** Does not compile when an operation's type did not resolve (a path or status changed). */
type Resolved<T> = [T] extends [never] ? false : true;
export const OPERATION_TYPES_RESOLVED: [
  Resolved<Asset>, Resolved<Balance>, Resolved<Position>, Resolved<OpenPosition>, Resolved<ClosedPosition>,
  Resolved<Candle>, Resolved<OpenRequest>, Resolved<SignedIn>, Resolved<SignedUp>,
] = [true, true, true, true, true, true, true, true, true];
export type Interval = '1m' | '5m' | '15m' | '30m' | '1h' | '4h' | '1d' | '1w';
export const INTERVALS: Interval[] = ['1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w'];

/** What each error code means to a trader. */
const MESSAGES: Record<string, string> = {
  email_taken: 'An account with this email already exists. Sign in instead.',
  invalid_email: 'That does not look like an email address.',
  weak_password: 'The password needs at least 8 characters.',
  invalid_credentials: 'Wrong email or password.',
  unauthorized: 'Your session has ended. Please sign in again.',
  no_price: 'There is no price for this instrument yet. Try again in a moment.',
  slippage_exceeded: 'The price moved too far before the order was filled.',
  insufficient_margin: 'Not enough free margin for this position.',
  invalid_leverage: 'That leverage is not allowed for this instrument.',
  invalid_quantity: 'That quantity is not allowed for this instrument.',
  invalid_stop_loss: 'The stop-loss is on the wrong side of the price.',
  invalid_take_profit: 'The take-profit is on the wrong side of the price.',
  position_not_found: 'That position is not open (any more).',
  account_not_found: 'Your trading account was not found.',
  idempotency_key_reused: 'This order was already sent with different details.',
  invalid_idempotency_key: 'The request could not be sent safely. Try again.',
  command_id_reused: 'This order was already sent with different details.',
  idempotency_key_expired: 'This request was sent too long ago to be repeated. Check your positions and orders.',
  too_many_orders: 'You have the most pending orders allowed. Cancel one first.',
  too_many_positions: 'You have the most open positions allowed. Close one first.',
  invalid_order_price: 'That order price is on the wrong side of the market for this order type.',
  invalid_expiry: 'The expiry must be in the future.',
  invalid_trailing_distance: 'That trailing distance is not allowed for this instrument.',
  order_not_found: 'That order is not pending (any more).',
  price_stale: 'The price of this instrument is out of date (no new quote for 30 s or more), so it cannot be traded now. Try again once prices are live.',
  invalid_json: 'The request was malformed.',
  invalid_request: 'The request was not valid.',
  invalid_query: 'The request was not valid.',
  invalid_asset: 'Unknown instrument.',
  invalid_interval: 'Unknown chart interval.',
  invalid_range: 'Invalid time range.',
  invalid_limit: 'Invalid page size.',
  payload_too_large: 'The request was too large.',
  not_found: 'Not found.',
  method_not_allowed: 'Not allowed.',
  engine_timeout: 'The trading engine did not answer in time; your order may still go through. Check your positions.',
  unavailable: 'The service is unavailable right now. Try again shortly.',
  network: 'Cannot reach the server. Check your connection.',
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(MESSAGES[code] ?? detail ?? code);
  }
}

interface ErrorBody {
  error?: { code?: string; message?: string };
}

export class Api {
  token: string | null = null;
  onUnauthorized: () => void = () => {};

  constructor(private readonly base: string) {}

  /** One call of the API; also used by the feature modules beside this one (orders.ts, alerts.ts). */
  async request<T>(method: string, path: string, body?: unknown, key?: string): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (key) headers['idempotency-key'] = key;
    let res: Response;
    try {
      res = await fetch(`${this.base}/api/v1${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'network', 'network error');
    }
    if (res.ok) return (await res.json()) as T;
    let parsed: ErrorBody = {};
    try {
      parsed = (await res.json()) as ErrorBody;
    } catch {
      // An error without a JSON body: the status says enough.
    }
    const code = parsed.error?.code ?? (res.status >= 500 ? 'unavailable' : 'invalid_request');
    if (res.status === 401 && this.token) this.onUnauthorized();
    throw new ApiError(res.status, code, parsed.error?.message ?? res.statusText);
  }

  signup(email: string, password: string): Promise<SignedUp> {
    return this.request('POST', '/auth/signup', { email, password });
  }

  signin(email: string, password: string): Promise<SignedIn> {
    return this.request('POST', '/auth/signin', { email, password });
  }

  balance(): Promise<Balance> {
    return this.request('GET', '/balance');
  }

  async assets(): Promise<Asset[]> {
    return (await this.request<{ assets: Asset[] }>('GET', '/assets')).assets;
  }

  async candles(asset: string, interval: Interval, to?: number, limit = 500): Promise<Candle[]> {
    const q = new URLSearchParams({ asset, interval, limit: String(limit) });
    if (to !== undefined) q.set('to', String(to));
    return (await this.request<{ candles: Candle[] }>('GET', `/candles?${q}`)).candles;
  }

  async open(order: OpenRequest, idempotencyKey: string): Promise<Position> {
    return (await this.request<{ position: Position }>('POST', '/trade/open', order, idempotencyKey))
      .position;
  }

  async close(positionId: number, idempotencyKey: string): Promise<ClosedPosition> {
    const body = { positionId };
    return (await this.request<{ position: ClosedPosition }>('POST', '/trade/close', body, idempotencyKey))
      .position;
  }

  /** Replaces the levels as a whole: pass the trailing distance to keep it (null clears it). */
  async modify(
    positionId: number,
    stopLoss: string | null,
    takeProfit: string | null,
    idempotencyKey: string,
    trailingDistance: string | null = null,
  ): Promise<Position> {
    const body = { positionId, stopLoss, takeProfit, trailingDistance };
    return (await this.request<{ position: Position }>('POST', '/trade/modify', body, idempotencyKey))
      .position;
  }

  async openPositions(): Promise<OpenPosition[]> {
    return (await this.request<{ positions: OpenPosition[] }>('GET', '/trade/open')).positions;
  }

  closedPositions(limit: number, before?: string): Promise<{ positions: ClosedPosition[]; next: string | null }> {
    const q = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) q.set('before', before);
    return this.request('GET', `/trade/closed?${q}`);
  }

  /** Trade statistics over the trades closed from `from` (ms) on; all of them without it. */
  stats(from?: number): Promise<AccountStats> {
    return this.request('GET', from === undefined ? '/account/stats' : `/account/stats?from=${from}`);
  }

  /** Realised PnL per day (or week) from `from` (ms; the first trade's day without it) to now. */
  pnl(interval: '1d' | '1w', from?: number): Promise<PnlSeries> {
    const q = new URLSearchParams({ interval });
    if (from !== undefined) q.set('from', String(from));
    return this.request('GET', `/account/pnl?${q}`);
  }
}

/** A fresh key per user action: a retried request with it trades once. */
export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}
