import fs from 'node:fs';
import net from 'node:net';
import { freePort } from '../lib/local-services/ports';

const listen = (port: number) =>
  new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
const close = (server: net.Server) => new Promise((resolve) => server.close(resolve));

describe('free ports for the processes tests and benchmarks start (freePort)', () => {
  it('hands out ports outside the ephemeral range, which outgoing connections take and a server then cannot bind', async () => {
    const [ephemeralLow] = fs.existsSync('/proc/sys/net/ipv4/ip_local_port_range')
      ? fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
      : [32_768];
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(ports.filter((port) => port < 1024 || port >= ephemeralLow)).toEqual([]);

    // What goes wrong with a port from that range: an outgoing connection's local port cannot be bound.
    const target = await listen(0);
    const outgoing = net.connect((target.address() as net.AddressInfo).port, '127.0.0.1');
    await new Promise((resolve) => outgoing.once('connect', resolve));
    await expect(listen(outgoing.localPort!)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    outgoing.destroy();
    await close(target);
  });
});
