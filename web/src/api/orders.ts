/**
 * The API calls of pending orders and partial closes (issue 10), beside the client's own
 * calls: place, cancel, modify and list pending orders, the order history, and closing part
 * of a position. Every POST carries an Idempotency-Key, like the client's.
 */
import type { Api, Body, RequestBody } from './client';

/** A pending order as the API shows it (`status` is "pending" while it waits). */
export type PendingOrder = Body<'/api/v1/trade/orders', 'get', 200>['orders'][number];
export type OrderRequest = RequestBody<'/api/v1/trade/orders', 'post'>;
type Placed = Body<'/api/v1/trade/orders', 'post', 201>;
type Cancelled = Body<'/api/v1/trade/orders/cancel', 'post', 200>;
type Modified = Body<'/api/v1/trade/orders/modify', 'post', 200>;
/**
 * The body of POST /trade/orders/modify, by hand: the document's `ModifyRequest` of this
 * operation is the position one (two request types of the same name in functions/src).
 */
interface ModifyBody {
  orderId: PendingOrder['id'];
  price?: PendingOrder['price'];
  stopLoss: PendingOrder['stopLoss'];
  takeProfit: PendingOrder['takeProfit'];
  expiresAt: PendingOrder['expiresAt'];
}
export type FinishedOrder = Body<'/api/v1/trade/orders/history', 'get', 200>['orders'][number];
type CloseBody = RequestBody<'/api/v1/trade/close', 'post'>;
export type CloseAnswer = Body<'/api/v1/trade/close', 'post', 200>;

/** Does not compile when an operation's type did not resolve (a path or status changed). */
type Resolved<T> = [T] extends [never] ? false : true;
export const ORDER_TYPES_RESOLVED: [
  Resolved<PendingOrder>, Resolved<OrderRequest>, Resolved<Placed>, Resolved<Cancelled>, Resolved<Modified>,
  Resolved<CloseAnswer>, Resolved<FinishedOrder>,
] = [true, true, true, true, true, true, true];

/** A new price if given (else kept); SL, TP and expiry are replaced as a whole (null clears). */
export interface OrderChange {
  price?: string;
  stopLoss: string | null;
  takeProfit: string | null;
  expiresAt: number | null;
}

export async function placeOrder(api: Api, order: OrderRequest, key: string): Promise<PendingOrder> {
  return (await api.request<Placed>('POST', '/trade/orders', order, key)).order;
}

export async function cancelOrder(api: Api, orderId: number, key: string): Promise<PendingOrder> {
  return (await api.request<Cancelled>('POST', '/trade/orders/cancel', { orderId }, key)).order;
}

export async function modifyOrder(api: Api, orderId: number, change: OrderChange, key: string): Promise<PendingOrder> {
  const body: ModifyBody = { orderId, stopLoss: change.stopLoss, takeProfit: change.takeProfit, expiresAt: change.expiresAt };
  if (change.price !== undefined) body.price = change.price;
  return (await api.request<Modified>('POST', '/trade/orders/modify', body, key)).order;
}

export async function pendingOrders(api: Api): Promise<PendingOrder[]> {
  return (await api.request<{ orders: PendingOrder[] }>('GET', '/trade/orders')).orders;
}

/** Filled and cancelled orders, newest first, a page at a time (`next` is the cursor for `before`). */
export function orderHistory(api: Api, limit: number, before?: string): Promise<{ orders: FinishedOrder[]; next: string | null }> {
  const q = new URLSearchParams({ limit: String(limit) });
  if (before !== undefined) q.set('before', before);
  return api.request('GET', `/trade/orders/history?${q}`);
}

/** Closes `quantity` of a position (less than all of it); the answer names what stays open. */
export async function closePart(api: Api, positionId: number, quantity: string, key: string): Promise<CloseAnswer> {
  const body: CloseBody = { positionId, quantity };
  return api.request<CloseAnswer>('POST', '/trade/close', body, key);
}
