// A local server speaking Binance's combined-stream JSON (bookTicker and trade events, as in
// bus/tests/feed.rs), so the browser test decides the prices. On each connection it first
// replays seven hours of trades (so the chart has history), then sends the current book and a
// trade for every asset every 250 ms. It also serves a page of a foreign origin for the CORS test.
import http from 'node:http';
import { WebSocketServer } from 'ws';

export const HISTORY_MINUTES = 420;
const SYMBOLS = { BTC: 'BTCUSDT', ETH: 'ETHUSDT', SOL: 'SOLUSDT' };

export async function startBinance(initial) {
  const prices = { ...initial }; // asset -> { bid, ask } (decimal strings)
  let tradeId = 1;
  let u = 1;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>elsewhere</title><p>another origin</p>');
  });
  const wss = new WebSocketServer({ server });
  const book = (asset) => {
    const s = SYMBOLS[asset];
    const { bid, ask } = prices[asset];
    return JSON.stringify({ stream: `${s.toLowerCase()}@bookTicker`, data: { u: u++, s, b: bid, B: '1.5', a: ask, A: '2.25' } });
  };
  const trade = (asset, price, time, qty = '0.01') => {
    const s = SYMBOLS[asset];
    return JSON.stringify({
      stream: `${s.toLowerCase()}@trade`,
      data: { e: 'trade', E: time, s, t: tradeId++, p: price, q: qty, T: time, m: true, M: true },
    });
  };
  const history = (asset) => {
    // Seven hours of one-minute candles (more than the page's first request of 300) (open, high, low, close trades in each minute), a
    // deterministic walk that ends at the current bid.
    const closes = [];
    let p = Number(prices[asset].bid);
    for (let m = 0; m < HISTORY_MINUTES; m++) {
      closes.push(p);
      p = p / (1 + Math.sin(m * 1.7) * 0.0016 + Math.cos(m * 0.37) * 0.0009);
    }
    closes.reverse();
    const firstMinute = Math.floor(Date.now() / 60_000) * 60_000 - HISTORY_MINUTES * 60_000;
    const out = [];
    closes.forEach((close, i) => {
      const open = i === 0 ? close : closes[i - 1];
      const high = Math.max(open, close) * (1 + 0.0005 * Math.abs(Math.sin(i * 2.3)));
      const low = Math.min(open, close) * (1 - 0.0005 * Math.abs(Math.cos(i * 1.9)));
      const t = firstMinute + i * 60_000;
      const qty = (0.2 + Math.abs(Math.sin(i * 0.9)) * 0.8).toFixed(2);
      [open, high, low, close].forEach((price, k) => out.push(trade(asset, price.toFixed(2), t + 5_000 + k * 12_000, qty)));
    });
    return out;
  };
  wss.on('connection', (socket) => {
    for (const a of Object.keys(SYMBOLS)) for (const m of history(a)) socket.send(m);
    const timer = setInterval(() => {
      for (const a of Object.keys(SYMBOLS)) {
        socket.send(book(a));
        socket.send(trade(a, prices[a].bid, Date.now()));
      }
    }, 250);
    socket.on('close', () => clearInterval(timer));
    socket.on('error', () => clearInterval(timer));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    url: `ws://127.0.0.1:${port}`,
    httpUrl: `http://127.0.0.1:${port}`,
    set(asset, bid, ask) {
      prices[asset] = { bid, ask };
    },
    get(asset) {
      return prices[asset];
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
