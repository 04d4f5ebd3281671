// Starts the real platform for the browser test the way `local/up` does (the `exness-local`
// runner), but isolated: a fresh database, its own ENGINE_PREFIX and REDIS_PREFIX, free ports
// for everything (port 0; the addresses are read from its log), prices from the local Binance
// stand-in. `stop()` ends it and deletes the database and its NATS streams.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect } from 'nats';

const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const PG = process.env.PGURL_ADMIN ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function psql(sql) {
  execFileSync('psql', [PG, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { stdio: ['ignore', 'ignore', 'inherit'] });
}

export async function startPlatform({ bin, webDir, binanceUrl, log }) {
  const id = `webe2e${randomBytes(5).toString('hex')}`;
  psql(`CREATE DATABASE ${id}`);
  const dbUrl = PG.replace(/\/[^/]*$/, `/${id}`);
  const env = {
    ...process.env,
    DATABASE_URL: dbUrl,
    NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    ENGINE_PREFIX: id,
    REDIS_PREFIX: id,
    HTTP_ADDR: '127.0.0.1:0',
    WS_ADDR: '127.0.0.1:0',
    WEB_ADDR: '127.0.0.1:0',
    DOCS_ADDR: '127.0.0.1:0',
    WEB_DIR: webDir,
    PRICE_SOURCE: 'binance',
    BINANCE_WS_URL: binanceUrl,
    MARKUP_BPS: '0',
    RUST_LOG: 'info',
    NO_COLOR: '1',
  };
  delete env.CORS_ALLOWED_ORIGINS;
  const child = spawn(bin, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const addrs = await new Promise((resolve, reject) => {
    const found = {};
    const timer = setTimeout(() => reject(new Error('the runner did not start within 120 s')), 120_000);
    const onLine = (raw) => {
      const line = raw.replace(ANSI, '');
      log(line);
      let m = line.match(/HTTP API on http:\/\/([\d.:]+)\//);
      if (m) found.api = `http://${m[1]}`;
      m = line.match(/web page on http:\/\/([\d.:]+)\/, API reference on http:\/\/([\d.:]+)\//);
      if (m) {
        found.web = `http://${m[1]}`;
        found.docs = `http://${m[2]}`;
      }
      if (found.api && found.web) {
        clearTimeout(timer);
        resolve(found);
      }
    };
    let buffer = '';
    const feed = (chunk) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop();
      lines.forEach(onLine);
    };
    child.stdout.setEncoding('utf8').on('data', feed);
    child.stderr.setEncoding('utf8').on('data', feed);
    child.on('exit', (code) => reject(new Error(`the runner exited early (${code})`)));
  });
  return {
    ...addrs,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((resolve) => {
          const t = setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, 15_000);
          child.on('exit', () => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      try {
        psql(`DROP DATABASE IF EXISTS ${id} WITH (FORCE)`);
      } catch (e) {
        log(`could not drop ${id}: ${e}`);
      }
      try {
        const nc = await connect({ servers: env.NATS_URL.replace(/^nats:\/\//, '') });
        const jsm = await nc.jetstreamManager();
        for await (const s of jsm.streams.list()) {
          if (s.config.name.includes(id)) await jsm.streams.delete(s.config.name);
        }
        await nc.close();
      } catch (e) {
        log(`could not delete the NATS streams of ${id}: ${e}`);
      }
    },
  };
}
