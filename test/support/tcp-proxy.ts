import net from 'node:net';

/**
 * A TCP proxy to `target` on `port` (a free one when 0): closing it is a real outage of the service
 * behind it for whoever reaches it through the proxy, and no one else; freezing it, a stall.
 */
export async function tcpProxy(target: string, port = 0): Promise<{ url: string; close(): Promise<void>; freeze(): void; thaw(): void }> {
  const upstream = new URL(target);
  const sockets = new Set<net.Socket>();
  let frozen = false;
  const server = net.createServer((client) => {
    const service = net.connect(Number(upstream.port), upstream.hostname);
    for (const socket of [client, service]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(service).pipe(client);
    // After pipe(), which sets both flowing: a connection made while frozen passes nothing on either.
    if (frozen) [client, service].forEach((socket) => socket.pause());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `${upstream.protocol}//127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    /** A stalled service (a frozen process): connections stay open, nothing said is passed on until thaw(). */
    freeze: () => {
      frozen = true;
      sockets.forEach((socket) => socket.pause());
    },
    thaw: () => {
      frozen = false;
      sockets.forEach((socket) => socket.resume());
    },
    close: () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      sockets.forEach((socket) => socket.destroy());
      return closed;
    },
  };
}
