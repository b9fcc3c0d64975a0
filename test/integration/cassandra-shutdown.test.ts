import { execFile } from 'node:child_process';
import path from 'node:path';

/**
 * A cassandra-driver Client whose server went away schedules its control connection's next
 * reconnection with a timer that shutdown() did not cancel (cassandra-driver 4.10.0): the process
 * then lived on for the reconnection policy's delay (10 minutes at most with the driver's
 * default) after everything was shut down. patches/cassandra-driver+4.10.0.patch cancels it.
 *
 * In a child process, so that "exits" is what is measured: a client connects to the real
 * Cassandra through a TCP proxy, the proxy goes away under it, the client is shut down, and the
 * process must exit at once, not after the 30 s reconnection delay.
 */
const CHILD = `
const net = require('node:net');
const { Client, policies } = require('cassandra-driver');
const [host, port] = (process.env.CASSANDRA_CONTACT_POINTS ?? '127.0.0.1:9042').split(',')[0].split(':');
const sockets = new Set();
const proxy = net.createServer((c) => {
  const s = net.connect(Number(port ?? 9042), host);
  for (const x of [c, s]) sockets.add(x);
  c.pipe(s);
  s.pipe(c);
  const end = () => { c.destroy(); s.destroy(); };
  for (const x of [c, s]) { x.on('error', end); x.on('close', end); }
});
proxy.listen(0, '127.0.0.1', async () => {
  const client = new Client({
    contactPoints: ['127.0.0.1'],
    localDataCenter: process.env.CASSANDRA_LOCAL_DC ?? 'datacenter1',
    protocolOptions: { port: proxy.address().port },
    policies: { reconnection: new policies.reconnection.ConstantReconnectionPolicy(30000) },
  });
  await client.connect();
  proxy.close();
  for (const s of sockets) s.destroy();
  // Long enough for the control connection to fail over to nothing and schedule its reconnection.
  await new Promise((r) => setTimeout(r, 1500));
  await client.shutdown();
  console.log('shut down at ' + Date.now());
});
`;

test('a Cassandra client shut down after its server went away lets the process exit at once', async () => {
  const root = path.resolve(__dirname, '../..');
  const { stdout, exitedAt } = await new Promise<{ stdout: string; exitedAt: number }>((resolve, reject) => {
    execFile(process.execPath, ['-e', CHILD], { cwd: root, timeout: 60000 }, (err, out, errOut) => {
      if (err) reject(new Error(`${err.message}\n${errOut}`));
      else resolve({ stdout: out, exitedAt: Date.now() });
    });
  });
  const shutDownAt = Number(/shut down at (\d+)/.exec(stdout)?.[1]);
  expect(shutDownAt).toBeGreaterThan(0);
  // Unpatched, the process exits only when the 30 s reconnection timer fires.
  expect(exitedAt - shutDownAt).toBeLessThan(5000);
}, 90000);
