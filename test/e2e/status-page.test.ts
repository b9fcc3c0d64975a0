import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { EnrolmentSyncService } from '../../src/service';
import { createTestContext, type TestContext } from '../helpers/context';
import { createJwtTestContext, token } from '../helpers/jwt';
import { enrolment, patch, seed, startService } from '../helpers/service';

/**
 * The status page at /ui in a real headless Chromium (Debian's package; `make browser` installs
 * it), against the real API and processor: a paced whole-batch sync is watched from the page
 * until its progress bar reaches done, beside a dead-lettered trigger whose id is markup.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '../../.run/artifacts');
const COURSE = 'do_course_ui';
const BATCH = 'batch_ui_big';
const USERS = 8000;
/** A trigger id that is HTML and script: the page must show it as text and run none of it. */
const HOSTILE_ID = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>&amp;"'`;

async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: run 'make browser' (apt-get install chromium) or set CHROMIUM_PATH`);
  }
  // Root (as CI runs) cannot use Chromium's sandbox; the page is our own, on 127.0.0.1.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/** Console errors and uncaught exceptions, a CSP violation among them. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

interface RowView {
  state: string | null;
  progress: string | null;
  bar: number;
  percent: string;
  events: string;
  dead: string;
  id: string;
}

async function rowOf(page: Page, triggerId: string): Promise<RowView | undefined> {
  return page.evaluate((id) => {
    const doc = (globalThis as any).document;
    const row = [...doc.querySelectorAll('#triggers tr')].find((tr: any) => tr.getAttribute('data-trigger-id') === id);
    if (!row) return undefined;
    const cells = row.querySelectorAll('td');
    return {
      state: row.getAttribute('data-state'),
      progress: row.getAttribute('data-progress'),
      bar: row.querySelector('progress').position,
      percent: row.querySelector('.percent').textContent,
      events: cells[3].textContent,
      dead: cells[7].textContent,
      id: row.querySelector('.id').textContent,
    };
  }, triggerId);
}

describe('status page /ui in headless Chromium (real API, processor, Kafka, Cassandra)', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;
  let browser: Browser;

  beforeAll(async () => {
    // Paced: the batch takes about four seconds, so the page sees it between 0 and 100%.
    ctx = await createTestContext({ SYNC_MAX_EVENTS_PER_SECOND: '2000', SYNC_READ_PLAN: 'scan' });
    await seed(
      ctx,
      Array.from({ length: USERS }, (_, i) => enrolment(`ui-${i}`, COURSE, BATCH)),
      [[COURSE, BATCH]],
    );
    service = await startService(ctx, { api: true, processor: true });
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await service?.stop();
    await ctx?.cleanup();
  });

  test("a running batch's progress bar advances to done; a dead-lettered trigger shows its count and its id as text", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 600 } });
    const errors = watchErrors(page);
    await page.goto(`${service.url}/ui`);
    await page.waitForSelector('#empty:not([hidden])', { timeout: 10000 });

    const producer = ctx.kafka.producer();
    await producer.connect();
    const triggerId = `ui-batch-${ctx.id}`;
    await producer.send({
      topic: ctx.settings.topics.trigger,
      messages: [
        // No batchId: dead-lettered, and its failure reported under its (hostile) id.
        { key: 'bad', value: JSON.stringify({ triggerId: HOSTILE_ID, courseId: COURSE }) },
        { key: triggerId, value: JSON.stringify({ triggerId, courseId: COURSE, batchId: BATCH }) },
      ],
    });
    await producer.disconnect();

    mkdirSync(ARTIFACTS, { recursive: true });
    const running = path.join(ARTIFACTS, 'status-page-running.png');
    rmSync(running, { force: true });
    const seen: RowView[] = [];
    const deadline = Date.now() + 90000;
    for (;;) {
      const row = await rowOf(page, triggerId);
      if (row) seen.push(row);
      if (row?.state === 'running' && Number(row.progress) > 0 && !existsSync(running)) {
        await page.screenshot({ path: running, fullPage: true });
      }
      if (row?.state === 'done' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const values = seen.filter((r) => r.progress !== null).map((r) => Number(r.progress));
    const intermediate = values.filter((v) => v > 0 && v < 1);
    // Printed so a run shows what the page went through.
    console.log(
      `progress seen on the page: ${[...new Set(values.map((v) => Math.round(v * 1000) / 10))].join('%, ')}%`,
    );
    expect(intermediate.length).toBeGreaterThanOrEqual(1);
    expect(seen.some((r) => r.state === 'running')).toBe(true);
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1] as number);
    const last = seen[seen.length - 1];
    expect(last).toMatchObject({ state: 'done', progress: '1', percent: '100%', events: '8,000', dead: '0' });
    expect(last?.bar).toBe(1);

    const bad = await rowOf(page, HOSTILE_ID);
    expect(bad).toMatchObject({ state: 'failed', dead: '1', id: HOSTILE_ID, progress: '0', percent: '' });
    expect(await page.evaluate(() => (globalThis as any).__pwned)).toBeUndefined();
    expect(await page.locator('#triggers img, #triggers script').count()).toBe(0);
    expect(await page.locator('tr[data-state="failed"] .error-text').textContent()).toMatch(
      /SYNC_BAD_TRIGGER.*batchId/,
    );

    const shot = path.join(ARTIFACTS, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`status page screenshots: ${running} (running), ${shot} (done)`);
    expect(errors).toEqual([]);
    await page.close();
  });

  test('the list endpoint: newest first, filtered by state, bounded, and a bad parameter named', async () => {
    const list = async (query: string) => {
      const res = await fetch(`${service.url}/v1/content/state/sync${query}`);
      return { status: res.status, body: (await res.json()) as any };
    };
    // Two more triggers, the second sent once the first is done: the newest comes first.
    const syncOne = async (userId: string): Promise<string> => {
      const res = await patch(`${service.url}/v1/content/state/update`, {
        request: { userId: [userId], courseId: COURSE, batchId: BATCH },
      });
      expect(res.status).toBe(200);
      const id = res.body.result.triggerId as string;
      for (let i = 0; i < 100; i++) {
        const found = (await list('?state=done&limit=500')).body.result.triggers;
        if (found.some((t: any) => t.triggerId === id)) return id;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`trigger ${id} not done in 10 s`);
    };
    const older = await syncOne('ui-1');
    const newer = await syncOne('ui-2');
    const ids = [newer, older];
    const done: any[] = (await list('?state=done')).body.result.triggers;
    expect(done.every((t) => t.state === 'done')).toBe(true);
    expect(done.map((t) => t.triggerId).filter((id) => ids.includes(id))).toEqual(ids);
    const finishedAt = done.map((t) => t.finishedAt as number);
    expect(finishedAt).toEqual([...finishedAt].sort((a, b) => b - a));

    const all = await list('');
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ id: 'api.content.state.sync.list', responseCode: 'OK' });
    expect(all.body.result).toMatchObject({ response: 'Success', limit: 50, count: 4 });
    const one = await list('?limit=1&state=finished');
    expect(one.body.result.triggers).toHaveLength(1);
    expect(one.body.result.triggers[0].triggerId).toBe(ids[0]);
    const failed = await list('?state=failed');
    expect(failed.body.result.triggers.map((t: any) => [t.triggerId, t.deadLetters])).toEqual([[HOSTILE_ID, 1]]);
    expect((await list('?state=running')).body.result.triggers).toEqual([]);

    for (const [query, field] of [
      ['?limit=0', 'limit'],
      ['?limit=501', 'limit'],
      ['?limit=ten', 'limit'],
      ['?state=sleeping', 'state'],
      ['?colour=red', 'colour'],
    ] as const) {
      const res = await list(query);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        id: 'api.content.state.sync.list',
        responseCode: 'CLIENT_ERROR',
        params: { status: 'failed', err: 'INVALID_PARAMETER_VALUE' },
        result: { field },
      });
    }
    const post = await fetch(`${service.url}/v1/content/state/sync`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
  });
});

describe('status page and list endpoint with JWT authentication on', () => {
  let ctx: TestContext;
  let service: EnrolmentSyncService;
  let browser: Browser;
  let triggerId: string;

  beforeAll(async () => {
    ctx = await createJwtTestContext();
    await seed(ctx, [enrolment('alice', COURSE, 'batch_ui_auth')]);
    service = await startService(ctx, { api: true, processor: false });
    const res = await patch(
      `${service.url}/v1/content/state/update`,
      { request: { userId: 'alice', courseId: COURSE, batchId: 'batch_ui_auth' } },
      { 'Content-Type': 'application/json', Authorization: `Bearer ${await token('alice')}` },
    );
    expect(res.status).toBe(200);
    triggerId = res.body.result.triggerId;
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await service?.stop();
    await ctx?.cleanup();
  });

  test('the list endpoint refuses without a token (401) and without the admin role (403)', async () => {
    const url = `${service.url}/v1/content/state/sync`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
    expect(((await none.json()) as any).responseCode).toBe('UNAUTHORIZED');
    const user = await fetch(url, { headers: { Authorization: `Bearer ${await token('alice')}` } });
    expect(user.status).toBe(403);
    expect(((await user.json()) as any).responseCode).toBe('FORBIDDEN');
    const admin = await fetch(url, {
      headers: { Authorization: `Bearer ${await token('ops', { roles: ['admin'] })}` },
    });
    expect(admin.status).toBe(200);
    const triggers = ((await admin.json()) as any).result.triggers;
    expect(triggers).toEqual([expect.objectContaining({ triggerId, state: 'accepted', requestedBy: 'alice' })]);
  });

  test('the page asks for a token, refuses a non-admin one, and shows the triggers with an admin one', async () => {
    const page = await browser.newPage();
    const errors = watchErrors(page);
    await page.goto(`${service.url}/ui`);
    await page.waitForSelector('#auth:not([hidden])', { timeout: 10000 });
    expect(await page.locator('#auth-reason').textContent()).toMatch(/needs an admin bearer token/);
    expect(await page.locator('#triggers tr').count()).toBe(0);

    await page.fill('#token', await token('alice'));
    await page.click('#auth button[type="submit"]');
    await page.waitForFunction(() =>
      /refused/.test((globalThis as any).document.getElementById('auth-reason').textContent),
    );

    await page.fill('#token', `Bearer ${await token('ops', { roles: ['admin'] })}`);
    await page.click('#auth button[type="submit"]');
    await page.waitForSelector('#triggers tr[data-state="accepted"]', { timeout: 10000 });
    expect(await page.locator('#auth').isHidden()).toBe(true);
    expect(await rowOf(page, triggerId)).toMatchObject({ state: 'accepted', id: triggerId, dead: '0' });
    // Kept for the tab only; a reload still works without asking again.
    await page.reload();
    await page.waitForSelector('#triggers tr[data-state="accepted"]', { timeout: 10000 });
    expect(await page.locator('#auth').isHidden()).toBe(true);
    // The refused token's 403 is logged by the browser as a failed resource load; nothing else.
    expect(errors.filter((e) => !/status of 40[13]/.test(e))).toEqual([]);
    await page.close();
  });
});
