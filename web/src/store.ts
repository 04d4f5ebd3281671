/**
 * The page's one store: everything the views show, and a `subscribe` to re-render on change.
 * Views read it and call actions; only the actions (main.ts) write it.
 */
import type { Asset, Balance, ClosedPosition, OpenPosition } from './api/client';
import type { PendingOrder } from './api/orders';
import type { Connection, Quote } from './ws';

export interface State {
  token: string | null;
  email: string | null;
  assets: Asset[];
  quotes: Record<string, Quote>;
  /** When this page last received each asset's quote (ms, its own clock): see freshness.ts. */
  quoteAt: Record<string, number>;
  selected: string;
  connection: Connection;
  balance: Balance | null;
  open: OpenPosition[];
  closed: ClosedPosition[];
  closedNext: string | null;
  /** Pending limit and stop orders. */
  orders: PendingOrder[];
}

type Listener = (state: State, changed: Set<keyof State>) => void;

export class Store {
  private readonly listeners = new Set<Listener>();
  readonly state: State;

  constructor(initial: State) {
    this.state = initial;
  }

  set(patch: Partial<State>): void {
    Object.assign(this.state, patch);
    const changed = new Set(Object.keys(patch) as (keyof State)[]);
    for (const l of this.listeners) l(this.state, changed);
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  asset(symbol: string): Asset | undefined {
    return this.state.assets.find((a) => a.symbol === symbol);
  }

  /** The live quote of an asset (the socket's, else the one /assets gave). */
  quote(symbol: string): { bid: string; ask: string } | null {
    const q = this.state.quotes[symbol];
    if (q) return q;
    const a = this.asset(symbol);
    return a?.bid && a.ask ? { bid: a.bid, ask: a.ask } : null;
  }
}

const TOKEN_KEY = 'exness.token';
const EMAIL_KEY = 'exness.email';

export function savedSession(): { token: string | null; email: string | null } {
  return { token: sessionStorage.getItem(TOKEN_KEY), email: sessionStorage.getItem(EMAIL_KEY) };
}

export function saveSession(token: string | null, email: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  if (email) sessionStorage.setItem(EMAIL_KEY, email);
  else sessionStorage.removeItem(EMAIL_KEY);
}
