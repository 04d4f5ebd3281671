/**
 * The API reference page (:3000): Swagger UI, bundled at build time, over the platform's own
 * OpenAPI document fetched from the running API (`GET /api/v1/openapi.json`), beside the
 * WebSocket protocol (static in reference/index.html).
 */
import SwaggerUI from 'swagger-ui-dist/swagger-ui-es-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';
import './reference.css';
import { loadEndpoints } from './config';

async function main(): Promise<void> {
  const endpoints = await loadEndpoints();
  const url = `${endpoints.api}/api/v1/openapi.json`;
  const wsUrl = document.getElementById('ws-url');
  if (wsUrl) wsUrl.textContent = endpoints.ws;
  const status = document.getElementById('ref-status');
  let spec: unknown;
  try {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    spec = await res.json();
  } catch (e) {
    if (status) status.textContent = `Cannot load ${url} (${String(e)}). Is the API running?`;
    return;
  }
  if (status) status.textContent = `Generated from ${url}. "Try it out" sends real requests to the API.`;
  // Requests from "Try it out" go to the API, not to this page's origin.
  const doc = spec as { servers?: { url: string }[] };
  doc.servers = [{ url: endpoints.api }];
  SwaggerUI({ spec: doc, dom_id: '#swagger', deepLinking: true, tryItOutEnabled: false });
}

void main();
