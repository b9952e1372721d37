// Free loopback ports for the servers the tests start. Everything listens on 127.0.0.1 only.
import { createServer } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/**
 * A port that was free a moment ago: bind 127.0.0.1:0, read what the kernel chose, close.
 * Another process could take it before the caller binds it; on loopback with ephemeral ports
 * that is rare enough for tests, and servers that can bind port 0 themselves should do so.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: LOOPBACK, port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: the server has no TCP address'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
