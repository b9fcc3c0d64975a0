import express from 'express';
import type { AddressInfo } from 'node:net';
import { requireAdmin } from '../../../src/api/app';

/** The admin gate for whole-batch and status endpoints, on a bare express app (no servers). */
describe('requireAdmin', () => {
  const serve = async (principal: { userId: string; admin: boolean } | undefined) => {
    const app = express();
    app.use((_req, res, next) => {
      res.locals.msgid = 'm1';
      res.locals.principal = principal;
      next();
    });
    app.get(
      '/status',
      requireAdmin(() => new Date(0)),
      (_req, res) => {
        res.json({ ok: true });
      },
    );
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/status`);
      return { status: res.status, body: (await res.json()) as any };
    } finally {
      server.close();
    }
  };

  test('authentication off: passes', async () => {
    expect(await serve(undefined)).toEqual({ status: 200, body: { ok: true } });
  });
  test('an admin token: passes', async () => {
    expect((await serve({ userId: 'ops', admin: true })).status).toBe(200);
  });
  test('a non-admin token: 403 in the envelope', async () => {
    const res = await serve({ userId: 'alice', admin: false });
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ responseCode: 'FORBIDDEN', params: { msgid: 'm1', err: 'FORBIDDEN' } });
  });
});
