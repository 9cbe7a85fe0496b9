import { mkdir } from 'node:fs/promises';
import type { Page } from 'playwright-core';
import { describe, expect, it, vi } from 'vitest';
import { CONSOLE_CSP } from '../../src/console/console-routes.ts';
import { TOKEN, useConsole } from './console-harness.ts';

const h = useConsole();
// Chromium and a control plane share 2 loaded cores in CI: a page reacting to a click or an event
// can take seconds there, far more than expect.poll's default 1 s; a poll still fails when the page never gets there.
vi.setConfig({ expect: { poll: { timeout: 15_000, interval: 50 } } });
const SHOTS = 'docs/console';
const shot = async (page: Page, name: string): Promise<void> => {
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
};

interface JobView {
  status: string;
  step: string;
}
/** The node the cancel test stops; it is started early so that it is deep in its slow Ansible run by then. */
let slow: Promise<{ nodeId: string; jobId: string }> | null = null;

const jobStep = async (jobId: string): Promise<JobView> => (await h.call<JobView>('GET', `/v1/jobs/${jobId}`)).body;

/** Records every value an element's text takes, from inside the page, so a live change cannot slip by between polls. */
const recordTexts = (page: Page, selector: string): Promise<void> =>
  page.evaluate((sel) => {
    const seen: string[] = [];
    (window as unknown as { seen: string[] }).seen = seen;
    const note = (): void => {
      for (const el of document.querySelectorAll(sel)) {
        const t = el.textContent ?? '';
        if (seen.at(-1) !== t) seen.push(t);
      }
    };
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, characterData: true });
    note();
  }, selector);
const recorded = (page: Page): Promise<string[]> => page.evaluate(() => (window as unknown as { seen: string[] }).seen);

describe('the web console, in headless Chromium against a real control plane', () => {
  it('serves its own assets publicly with a strict CSP, and nothing else under /console', async () => {
    const page = await fetch(`${h.url}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(page.headers.get('cache-control')).toBe('no-cache');
    const etag = page.headers.get('etag')!;
    expect((await fetch(`${h.url}/console`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    const js = await fetch(`${h.url}/console/assets/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
    const css = await fetch(`${h.url}/console/assets/console.css`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    // No file outside the allow-list, and the public prefix opens no API route.
    for (const path of ['/console/assets/nope.js', '/console/assets/..%2f..%2fpackage.json', '/console/assets/../../package.json', '/console/../v1/nodes', '/console/x/../../v1/nodes']) {
      const res = await fetch(`${h.url}${path}`);
      expect([401, 404], path).toContain(res.status);
    }
    expect((await fetch(`${h.url}/v1/nodes`)).status).toBe(401);
  });

  it('parses event streams however the bytes are split, with LF, CRLF or CR line ends', async () => {
    const page = await (await h.browser.newContext()).newPage();
    await page.goto(`${h.url}/console`);
    // A string, not a function: vitest would rewrite a dynamic import() inside a function body.
    const parsed = (await page.evaluate(`(async () => {
      const { sseParser } = await import('/console/assets/sse.js');
      const text = ': keep-alive\\r\\n\\r\\nid: 7\\r\\nevent: progress\\r\\ndata: {"a":1}\\r\\n\\r\\nevent: end\\rdata: x\\rdata: y\\r\\rdata: plain\\n\\n';
      const results = [];
      // Every way to cut the stream in two, including between a CR and its LF.
      for (let cut = 0; cut <= text.length; cut++) {
        const out = [];
        const feed = sseParser((e) => out.push(e));
        feed(text.slice(0, cut));
        feed(text.slice(cut));
        results.push(out);
      }
      return results;
    })()`)) as unknown[][];
    expect(parsed.length).toBeGreaterThan(90);
    const want = [
      { event: 'progress', data: '{"a":1}', id: '7' },
      // The last event id persists until another id: line, as in EventSource.
      { event: 'end', data: 'x\ny', id: '7' },
      { event: 'message', data: 'plain', id: '7' },
    ];
    for (const out of parsed) expect(out).toEqual(want);
    await page.context().close();
  });

  it('asks for the token, refuses a wrong one, keeps the right one in sessionStorage only', async () => {
    const context = await h.browser.newContext();
    const page = await context.newPage();
    const requests: Array<{ url: string; auth: string | undefined }> = [];
    page.on('request', (r) => requests.push({ url: r.url(), auth: r.headers().authorization }));
    await page.goto(`${h.url}/console`);
    const input = page.getByLabel('API token');
    await expect.poll(() => input.isVisible()).toBe(true);
    await input.fill('not-the-token-0123456789');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('error [unauthorized]');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await input.fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('pressluft.apiToken'))).toBe(TOKEN);
    expect(await context.cookies()).toEqual([]);
    // Every request went to the control plane itself, none carried the token in its URL,
    // and every API request carried it as a bearer header.
    for (const r of requests) {
      expect(r.url.startsWith(`${h.url}/`), r.url).toBe(true);
      expect(r.url).not.toContain(TOKEN);
      if (new URL(r.url).pathname.startsWith('/v1/') && r.auth !== 'Bearer not-the-token-0123456789') expect(r.auth).toBe(`Bearer ${TOKEN}`);
    }

    // A page the API does not know: its 404 code, verbatim.
    await page.evaluate(() => (location.hash = '#/nodes/n_doesnotexist'));
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('error [not_found]');

    // A token the API stops accepting mid-session: back to the prompt, with the reason.
    await page.evaluate(() => sessionStorage.setItem('pressluft.apiToken', 'revoked-token-0123456789'));
    await page.evaluate(() => (location.hash = '#/projections'));
    await page.getByRole('heading', { level: 1, name: 'Sign in' }).waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('error [unauthorized]');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await context.close();
  });

  it('updates the fleet list live as a provision moves on, with counts, filter and search', async () => {
    const page = await h.signedIn('#/fleet');
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    await recordTexts(page, 'tr[data-node-id] td[data-label=Status]');
    const { nodeId } = await h.createNode('web-1');
    const row = page.locator(`tr[data-node-id="${nodeId}"]`);
    await row.waitFor();
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 30_000, interval: 100 }).toBe('ready');
    const statuses = await recorded(page);
    // It was seen on its way, not only at the end: the list changed under the open page.
    expect(statuses[0]).not.toBe('ready');
    expect(statuses.at(-1)).toBe('ready');
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await row.locator('td[data-label=Address]').textContent()).toBe(`127.0.0.1:${h.sshPort}`);
    expect(await page.locator('button[data-status=ready] .n').textContent()).toBe('1');

    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await expect.poll(() => row.count()).toBe(0);
    await page.getByLabel('Status', { exact: true }).selectOption('');
    await page.getByLabel('Search by name').fill('nomatch');
    await expect.poll(() => row.count()).toBe(0);
    await page.getByLabel('Search by name').fill('web');
    await expect.poll(() => row.count()).toBe(1);
    await page.getByLabel('Search by name').fill('');
    await page.context().close();
  });

  it('shows a job live: steps, attempt and the Ansible task N of M, through to the end', async () => {
    // The page is open before the job exists, and a slow create keeps the job in its early steps
    // long enough to be seen there.
    const page = await h.signedIn('#/fleet');
    h.sim.admin.injectFault({ operation: 'create_server', count: 1, effect: { type: 'delay', ms: 2500 } });
    const { jobId, position } = await h.createNode('app-1');
    await page.evaluate((hash) => (location.hash = hash), `#/jobs/${jobId}?minPosition=${position}`);
    await page.locator('[data-field=step]').waitFor();
    await recordTexts(page, '[data-field=step]');
    await expect.poll(() => page.locator('[data-field=status]').textContent(), { timeout: 30_000, interval: 100 }).toBe('succeeded');
    await expect.poll(() => page.locator('#stream-status').textContent()).toBe('Stream ended: the job succeeded.');
    expect(await page.locator('#task').textContent()).toContain('Ansible task 4 of 4: Finish the converge');
    expect(await page.locator('#task-progress').evaluate((p: HTMLProgressElement) => [p.value, p.max])).toEqual([4, 4]);
    expect(await page.locator('[data-field=attempt]').textContent()).toBe('1 of 2');
    // Steps seen live, in their order: at least one before Ansible, then Ansible, then done.
    const order = ['queued', 'ssh_key', 'server_create', 'server_actions', 'server_ready', 'ansible', 'done'];
    const steps = await recorded(page);
    expect(steps.map((s) => order.indexOf(s))).toEqual([...steps.map((s) => order.indexOf(s))].sort((a, b) => a - b));
    expect(steps.indexOf('ansible')).toBeGreaterThan(0);
    expect(steps.at(-1)).toBe('done');
    expect(await page.locator('.steps li.done').count()).toBe(7);
    expect(await page.locator('#job-events li').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-type')))).toEqual(
      expect.arrayContaining(['ProvisionRequested', 'JobStarted', 'ServerReady', 'AnsibleStarted', 'AnsibleSucceeded', 'ProvisionSucceeded']),
    );
    await shot(page, 'job');
    await page.context().close();
  });

  it('shows a failing job: the pending retry and when it starts, then the code, message and output tail', async () => {
    // Attempt 1 meets a provider outage (retryable), attempt 2 a failing Ansible task (the last attempt).
    const page = await h.signedIn('#/fleet');
    h.sim.admin.injectFault({ operation: 'create_server', count: 1, effect: { type: 'error', status: 503, code: 'unavailable' } });
    const { jobId, position } = await h.createNode('fail-1');
    await page.evaluate((hash) => (location.hash = hash), `#/jobs/${jobId}?minPosition=${position}`);
    await page.locator('#retry').waitFor({ timeout: 30_000 });
    const retry = (await page.locator('#retry').textContent())!;
    expect(retry).toContain('Attempt 1 failed [PROVIDER_UNAVAILABLE]');
    expect(retry).toMatch(/Attempt 2 of 2 starts at .* \(in \d s\)\.$/);
    // Started only now, so that the injected outage cannot hit it.
    slow = h.createNode('slow-1');
    await expect.poll(() => page.locator('[data-field=status]').textContent(), { timeout: 30_000, interval: 200 }).toBe('failed');
    const failure = page.locator('#failure');
    expect(await failure.textContent()).toContain('error [ANSIBLE_HOST_FAILED]');
    expect(await failure.locator('pre').textContent()).toContain('stand-in failure for the console test');
    expect(await page.locator('.steps li.failed').getAttribute('data-step')).toBe('ansible');
    await shot(page, 'job-failed');
    await page.context().close();
  });

  it('shows a node timeline, the raw event, and the state at an earlier position', async () => {
    // The job page followed the event log; the node's lastJobId is in the read model once it has projected that far.
    const { body } = await h.call<{ nodes: Array<{ id: string; name: string; lastJobId: string }> }>('GET', `/v1/nodes?minPosition=${await h.cp.store.lastPosition()}`);
    const node = body.nodes.find((n) => n.name === 'app-1')!;
    const page = await h.signedIn(`#/nodes/${node.id}`);
    const rows = page.locator('table.timeline tr[data-type]');
    await expect.poll(() => rows.last().getAttribute('data-type')).toBe('ProvisionSucceeded');
    const first = rows.first();
    expect(await first.getAttribute('data-type')).toBe('ProvisionRequested');
    expect(await first.locator('td[data-label=Actor]').textContent()).toBe('api:default');
    expect(await first.locator('td[data-label=Correlation]').textContent()).toBe(node.lastJobId);
    expect(await first.locator('.desc').textContent()).toBe(`Provision requested: app-1 (cx22 in fsn1, ubuntu-24.04, ssh root@port ${h.sshPort}), up to 2 attempts`);
    await first.getByRole('button', { name: 'Raw' }).click();
    const raw = first.locator('xpath=following-sibling::tr[1]').locator('pre');
    expect(JSON.parse((await raw.textContent())!)).toMatchObject({ type: 'ProvisionRequested', actor: 'api:default', correlationId: node.lastJobId });
    await first.getByRole('button', { name: 'Raw' }).click();

    const state = page.locator('#state-view');
    await expect.poll(() => state.locator('[data-field=status]').textContent()).toBe('ready');
    // Keyboard only: Home goes to the first event, where the node was just requested.
    await page.getByLabel('Position', { exact: true }).focus();
    await page.keyboard.press('Home');
    await expect.poll(() => state.locator('[data-field=status]').textContent()).toBe('pending');
    expect(await state.locator('[data-field=at]').textContent()).toBe(await first.getAttribute('data-position'));
    expect(await state.locator('[data-field=currentJobId]').textContent()).toBe(node.lastJobId);
    // A click on a position in the timeline picks it too.
    const ready = rows.locator('xpath=self::*[@data-type="ServerReady"]');
    await ready.locator('td[data-label=Position] button').click();
    await expect.poll(() => state.locator('[data-field=at]').textContent()).toBe(await ready.getAttribute('data-position'));
    expect(await state.locator('[data-field=status]').textContent()).toBe('provisioning');
    await shot(page, 'node');

    await page.context().close();
  });

  it('cancels a running job from the node page after a confirm; shows a refusal and a stale read as they are', async () => {
    const { nodeId, jobId } = await (slow ?? h.createNode('slow-1'));
    const page = await h.signedIn(`#/nodes/${nodeId}`);
    await expect.poll(async () => (await jobStep(jobId)).step, { timeout: 30_000, interval: 200 }).toBe('ansible');
    await expect.poll(() => page.locator('dd[data-field=currentJobId]').first().textContent()).toBe(jobId);

    // Re-provision while a job runs: the API's 409 code, verbatim.
    await page.getByRole('button', { name: 'Re-provision' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Re-provision' }).click();
    await expect.poll(() => page.locator('#action-result').textContent()).toContain('error [job_active]');

    // Escape keeps things as they are.
    await page.getByRole('button', { name: 'Cancel current job' }).click();
    await page.keyboard.press('Escape');
    expect((await jobStep(jobId)).status).toBe('running');

    // With the projector stopped, the cancel is accepted but the read model cannot show it within
    // the API's wait: the page says its data may be older, instead of showing old data as new.
    await h.cp.projector.stop();
    try {
      await page.getByRole('button', { name: 'Cancel current job' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Cancel job' }).click();
      await expect.poll(() => page.locator('#action-result').textContent()).toContain('Cancel accepted');
      await expect.poll(() => page.getByText('The read model had not reached position').count(), { timeout: 30_000 }).toBe(1);
    } finally {
      h.cp.projector.start();
    }
    // Once the projector runs again, the page catches up by itself.
    await expect.poll(() => page.locator('table.timeline tr[data-type]').last().getAttribute('data-type'), { timeout: 30_000, interval: 200 }).toBe('JobCancelled');
    await expect.poll(() => page.getByRole('button', { name: 'Cancel current job' }).isDisabled()).toBe(true);
    // The timeline reads the event log; the job view is the read model, which may still be a step behind.
    await expect.poll(async () => (await jobStep(jobId)).status, { timeout: 30_000, interval: 200 }).toBe('cancelled');
    await page.context().close();
  });

  it('rebuilds the projection from the page, with the swap result', async () => {
    // A provision runs meanwhile: queries keep working during the rebuild, and the fleet below has a live job.
    const busy = await h.createNode('slow-2');
    const page = await h.signedIn('#/projections');
    const row = page.locator('tr[data-name=nodes]');
    await expect.poll(() => row.locator('[data-field=lag]').textContent()).toMatch(/^\d+$/);
    await page.getByRole('button', { name: 'Rebuild the nodes projection' }).click();
    const report = page.locator('#rebuild-report');
    await report.waitFor({ timeout: 30_000 });
    const replayed = Number(/Replayed (\d+) events/.exec((await report.textContent())!)?.[1]);
    expect(replayed).toBeGreaterThan(10);
    expect(await report.textContent()).toContain('Swapped in: nodes.');
    expect(await page.locator('#rebuild-progress').evaluate((p: HTMLProgressElement) => p.value)).toBe(1);
    await shot(page, 'projections');

    // The fleet after all of the above, on a laptop and on a phone.
    await page.evaluate(() => (location.hash = '#/fleet'));
    const busyRow = page.locator(`tr[data-node-id="${busy.nodeId}"]`);
    await expect.poll(() => busyRow.getAttribute('data-status'), { timeout: 30_000, interval: 200 }).toBe('provisioning');
    expect(await busyRow.locator('td[data-label="Current job"]').textContent()).toBe(busy.jobId);
    await shot(page, 'fleet');
    const phone = await h.signedIn('#/fleet', { width: 390, height: 844 });
    await phone.locator('tr[data-node-id]').nth(4).waitFor();
    await shot(phone, 'fleet-phone');
    await phone.context().close();
    await page.context().close();
  });
});
