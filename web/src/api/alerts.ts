/**
 * The price-alert calls of the HTTP API (`/api/v1/alerts`), typed from the OpenAPI document
 * like the rest of the client. Creating one sends a fresh Idempotency-Key, so a retried click
 * makes one alert.
 */
import { type Api, newIdempotencyKey } from './client';
import type { paths } from './schema';

export type Alert =
  paths['/api/v1/alerts']['post']['responses'][201]['content']['application/json']['alert'];
export type Direction = Alert['direction'];

export async function createAlert(api: Api, asset: string, price: string, direction: Direction): Promise<Alert> {
  const body = { asset, price, direction };
  return (await api.request<{ alert: Alert }>('POST', '/alerts', body, newIdempotencyKey())).alert;
}

export async function listAlerts(api: Api): Promise<Alert[]> {
  return (await api.request<{ alerts: Alert[] }>('GET', '/alerts')).alerts;
}

export async function cancelAlert(api: Api, alertId: number): Promise<Alert> {
  return (await api.request<{ alert: Alert }>('POST', '/alerts/cancel', { alertId })).alert;
}
