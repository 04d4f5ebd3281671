/**
 * Where the API and the WebSocket hub are. The server that serves the page answers
 * `/config.json` with their ports (joined to the page's own host name) or full URLs (for a
 * static deployment); without it the local defaults :8000 and :7070 are used.
 */
export interface Endpoints {
  api: string;
  ws: string;
}

interface ConfigFile {
  apiUrl?: string;
  wsUrl?: string;
  apiPort?: number;
  wsPort?: number | null;
}

export async function loadEndpoints(): Promise<Endpoints> {
  let file: ConfigFile = {};
  try {
    const res = await fetch('/config.json', { cache: 'no-store' });
    if (res.ok) file = (await res.json()) as ConfigFile;
  } catch {
    // No config file: a static deployment with the defaults.
  }
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  const wsScheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return {
    api: file.apiUrl ?? `${location.protocol}//${host}:${file.apiPort ?? 8000}`,
    ws: file.wsUrl ?? `${wsScheme}//${host}:${file.wsPort ?? 7070}/`,
  };
}
