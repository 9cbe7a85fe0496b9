import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { AnsiblePlaybookRunner } from '../../src/ansible/ansible-playbook-runner.ts';
import type { AnsibleRunner } from '../../src/ansible/runner-port.ts';
import { startControlPlane, type ControlPlane } from '../../src/app/control-plane.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createHetznerProvider } from '../../src/providers/hetzner/hetzner-provider.ts';
import { startHetznerSimulator, type HetznerSimulator } from '../../src/simulators/hetzner/start-simulator.ts';
import { fakeSshd } from '../support/saga-harness.ts';
import { captureLogger } from '../support/silent-logger.ts';

export const TOKEN = 'console-test-token-0123456789';

/** Chromium as CI has it: headless, no network of its own beyond what the page asks for. */
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * The real ansible-playbook, on a local connection: startControlPlane has no targetConnection
 * override yet, so the runner is wrapped to run the stand-in play on this machine (as the saga
 * e2e tests do with `targetConnection: 'local'`). Nothing reaches any sshd.
 */
const onLocalConnection = (inner: AnsibleRunner): AnsibleRunner => ({
  run: (req) => inner.run({ ...req, node: { ...req.node, connection: 'local' } }),
});

export interface ConsoleHarness {
  cp: ControlPlane;
  /** The Hetzner simulator the control plane buys from (over HTTP), for fault injection. */
  sim: HetznerSimulator;
  browser: Browser;
  /** The console's origin, e.g. http://127.0.0.1:41234 */
  url: string;
  sshPort: number;
  logLines: string[];
  /** An authenticated API call from the test (not from the page). */
  call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T }>;
  createNode(name: string): Promise<{ nodeId: string; jobId: string; position: number }>;
  /** A fresh page (its own sessionStorage), signed in through the token prompt, at `hash`. */
  signedIn(hash: string, viewport?: { width: number; height: number }): Promise<Page>;
}

/** A real control plane (embedded nats-server, built-in simulator, saga, API) and a headless Chromium. */
export const useConsole = (): ConsoleHarness => {
  const h = {} as ConsoleHarness;
  const { logger, lines } = captureLogger('warn');
  h.logLines = lines;
  let dir = '';
  let sshd: Awaited<ReturnType<typeof fakeSshd>> | null = null;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pressluft-console-'));
    sshd = await fakeSshd();
    h.sshPort = sshd.port;
    // The same simulator the control plane starts by itself, with shorter provider actions.
    h.sim = await startHetznerSimulator({ actionDurationMs: 200 });
    const config = loadConfig({
      PRESSLUFT_DATA_DIR: join(dir, 'data'),
      PRESSLUFT_PORT: '0',
      PRESSLUFT_API_TOKEN: TOKEN,
      PRESSLUFT_PLAYBOOK: 'test/console/fixtures/console-stand-in.yml',
      PRESSLUFT_MAX_ATTEMPTS: '2',
      // The failing-job test must see the pending retry on the page before attempt 2 starts: seconds of slack under load.
      PRESSLUFT_BACKOFF_MS: '8000',
      PRESSLUFT_ACK_WAIT_MS: '3000',
      PRESSLUFT_LOG_LEVEL: 'warn',
    });
    h.cp = await startControlPlane(config, {
      logger,
      provider: createHetznerProvider({ endpoint: h.sim.url, token: h.sim.token, timeoutMs: 10_000, logger }),
      runner: onLocalConnection(new AnsiblePlaybookRunner({ logger, killGraceMs: 1000 })),
      poll: { initialMs: 100, flatCount: 5, factor: 1.5, capMs: 300 },
    });
    h.url = h.cp.url!;
    h.browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    // The browser first: its open long polls and streams would otherwise hold the API's close.
    await h.browser?.close();
    await h.cp?.stop();
    await h.sim?.close();
    await sshd?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  h.call = async <T>(method: 'GET' | 'POST', path: string, body?: unknown) => {
    const res = await fetch(`${h.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  };
  h.createNode = async (name) => {
    const res = await h.call<{ nodeId: string; jobId: string; position: number }>('POST', '/v1/nodes', { name, serverType: 'cx22', location: 'fsn1', sshPort: h.sshPort });
    if (res.status !== 202) throw new Error(`create ${name}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  h.signedIn = async (hash, viewport = { width: 1280, height: 860 }) => {
    const context = await h.browser.newContext({ viewport });
    const page = await context.newPage();
    await page.goto(`${h.url}/console`);
    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
    await page.evaluate((hh) => {
      location.hash = hh;
    }, hash);
    return page;
  };
  return h;
};
