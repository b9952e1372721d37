// Free loopback ports for the servers the tests start. Everything listens on 127.0.0.1 only.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/**
 * The kernel's ephemeral range: the source ports of outgoing connections. A port handed out by
 * freePort() stays unbound until its server starts (a child process, a second or so later), and
 * in that gap any outgoing connection on the machine could take a port from this range. So
 * freePort() picks from below it, where only listeners choose their ports.
 */
function ephemeralRange(): { low: number; high: number } {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && high !== undefined && Number.isInteger(low) && Number.isInteger(high) && low > 0 && high >= low) return { low, high };
  } catch {
    // not Linux: the IANA dynamic range
  }
  return { low: 49152, high: 65535 };
}

const LOWEST_TEST_PORT = 10_000;

function tryBind(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(undefined) : reject(err)));
    server.listen({ host: LOOPBACK, port, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: the server has no TCP address'));
        return;
      }
      server.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}

/**
 * A port that was free a moment ago, chosen at random below the ephemeral range (see above), so
 * that only another test's listener, picking at random too, could take it before the caller
 * binds it. Falls back to a kernel-chosen port if none is free there.
 */
export async function freePort(): Promise<number> {
  const { low } = ephemeralRange();
  const span = low - LOWEST_TEST_PORT;
  if (span > 1000) {
    for (let i = 0; i < 50; i++) {
      const port = await tryBind(LOWEST_TEST_PORT + Math.floor(Math.random() * span));
      if (port !== undefined) return port;
    }
  }
  const port = await tryBind(0);
  if (port === undefined) throw new Error('freePort: no free loopback port');
  return port;
}
