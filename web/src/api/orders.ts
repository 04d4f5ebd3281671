/**
 * The API calls of pending orders and partial closes (issue 10), beside the client's own
 * calls: place, cancel, modify and list pending orders, the order history, and closing part
 * of a position. Every POST carries an Idempotency-Key, like the client's.
 */
import type { Api } from './client';
import type { OrderType } from '../order-rules';
import type { Side } from '../money';

/** A pending order as the API shows it (`status` is "pending" while it waits). */
export interface PendingOrder {
  id: number;
  asset: string;
  side: Side;
  type: OrderType;
  price: string;
  quantity: string;
  leverage: number;
  stopLoss: string | null;
  takeProfit: string | null;
  /** ms since the epoch; null: good till cancelled. */
  expiresAt: number | null;
  status: string;
  createdAt: number;
}

export interface OrderRequest {
  asset: string;
  side: Side;
  type: OrderType;
  price: string;
  quantity: string;
  leverage: number;
  stopLoss?: string;
  takeProfit?: string;
  expiresAt?: number;
}

/** A new price if given (else kept); SL, TP and expiry are replaced as a whole (null clears). */
export interface OrderChange {
  price?: string;
  stopLoss: string | null;
  takeProfit: string | null;
  expiresAt: number | null;
}

export async function placeOrder(api: Api, order: OrderRequest, key: string): Promise<PendingOrder> {
  return (await api.request<{ order: PendingOrder }>('POST', '/trade/orders', order, key)).order;
}

export async function cancelOrder(api: Api, orderId: number, key: string): Promise<PendingOrder> {
  return (await api.request<{ order: PendingOrder }>('POST', '/trade/orders/cancel', { orderId }, key)).order;
}

export async function modifyOrder(api: Api, orderId: number, change: OrderChange, key: string): Promise<PendingOrder> {
  // Absent and null both clear a level; absent keeps the price.
  const body: Record<string, unknown> = { orderId };
  if (change.price !== undefined) body.price = change.price;
  if (change.stopLoss !== null) body.stopLoss = change.stopLoss;
  if (change.takeProfit !== null) body.takeProfit = change.takeProfit;
  if (change.expiresAt !== null) body.expiresAt = change.expiresAt;
  return (await api.request<{ order: PendingOrder }>('POST', '/trade/orders/modify', body, key)).order;
}

export async function pendingOrders(api: Api): Promise<PendingOrder[]> {
  return (await api.request<{ orders: PendingOrder[] }>('GET', '/trade/orders')).orders;
}

/** Closes `quantity` of a position (less than all of it); the rest stays open. */
export async function closePart(api: Api, positionId: number, quantity: string, key: string): Promise<unknown> {
  return api.request('POST', '/trade/close', { positionId, quantity }, key);
}
