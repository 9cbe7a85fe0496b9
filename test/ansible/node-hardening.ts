import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { inClient, inNode, type TestNodeSession } from './test-node-session.ts';

// The hardening is proven to act, not just to be loaded: on a converged test node, fail2ban bans
// real failures and the WAF answers 403 to bad requests and lets WordPress traffic through.
// Every request runs inside the node (curl over ssh), so no traffic leaves the node's netns.
//
// fail2ban ignores 127.0.0.0/8 (spec: ignoreip 127.0.0.1/8) and the node's own addresses
// (ignoreself), so neither a loopback client nor an alias on the node's lo can ever be banned.
// The ban clients live in a second netns wired to the node by a veth pair (scripts/test-node.sh
// creates both): each jail gets its own address from 198.18.0.0/24 (RFC 2544, benchmarking; never
// routed) and reaches the node at 198.18.0.1 through its firewall, as an internet client would.
// The ban must come from real matched failures: no `fail2ban-client set … banip`. The WAF test
// runs inside the node; its remote-host rule is proven from documentation addresses (RFC 5737)
// put on the node's lo, which the WAF refuses.

const fixtures = resolve(import.meta.dirname, '../fixtures/test-node');
const SITES = readFileSync(resolve(fixtures, 'pressluft-test-sites.conf'), 'utf8');

interface WafRequest {
  category: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  from?: string;
  upload?: 'multipart' | 'binary';
}
const WAF = JSON.parse(readFileSync(resolve(fixtures, 'waf-requests.json'), 'utf8')) as { browser: Record<string, string>; bad: WafRequest[]; good: WafRequest[] };

const q = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
const WAF_REMOTE_HOSTS = ['192.0.2.66', '203.0.113.9'];
/** Never banned: shows that a ban is per address. */
const OTHER_CLIENT = '198.18.0.10';
const BAN_CLIENTS = [OTHER_CLIENT, '198.18.0.11', '198.18.0.12', '198.18.0.13', '198.18.0.14', '198.18.0.15'];

/** Installs the test-only server blocks and the client addresses; idempotent. */
const prepareNode = async (s: TestNodeSession): Promise<void> => {
  const r = await inNode(s, [
    'set -euo pipefail',
    ...WAF_REMOTE_HOSTS.map((a) => `ip addr replace ${a}/32 dev lo`),
    "printf 'tester:{PLAIN}right-password\\n' >/etc/nginx/pressluft-test.htpasswd",
    `cat >/etc/nginx/sites-enabled/zz-pressluft-test.conf <<'SITES'\n${SITES}SITES`,
    'head -c 4096 /dev/urandom >/tmp/pressluft-photo.jpg',
    'nginx -t -q && systemctl reload nginx',
  ].join('\n'));
  expect(r.stderr + r.stdout).toBe('');
  expect(r.exitCode).toBe(0);
  const c = await inClient(s, ['set -euo pipefail', ...BAN_CLIENTS.map((a) => `ip addr replace ${a}/24 dev pl-node`)].join('\n'));
  expect(c.stderr + c.stdout).toBe('');
  expect(c.exitCode).toBe(0);
};

const curl = (host: string, path: string, opts: { method?: string; from?: string; to?: string; extra?: string[] } = {}): string => {
  const target = opts.to ?? opts.from ?? '127.0.0.1';
  const args = ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}\\n', '--max-time', '10', '--path-as-is', '-H', `Host: ${host}`];
  if (opts.method === 'HEAD') args.push('--head');
  else if (opts.method && opts.method !== 'GET') args.push('-X', opts.method);
  if (opts.from) args.push('--interface', opts.from);
  args.push(...(opts.extra ?? []), `http://${target}${path}`);
  return args.map(q).join(' ');
};

const wafCurl = (r: WafRequest): string => {
  const extra: string[] = [];
  for (const [k, v] of Object.entries(r.headers ?? {})) extra.push('-H', `${k}: ${v}`);
  if (r.body !== undefined) extra.push('--data-binary', r.body);
  if (r.upload === 'multipart') extra.push('-F', 'async-upload=@/tmp/pressluft-photo.jpg;type=image/jpeg', '-F', 'name=photo.jpg');
  if (r.upload === 'binary') extra.push('-H', 'Content-Type: image/jpeg', '-H', 'Content-Disposition: attachment; filename="photo.jpg"', '--data-binary', '@/tmp/pressluft-photo.jpg');
  return curl('waf.pressluft.test', r.path, { method: r.method, from: r.from, extra });
};

/** Each jail: its client address, and the request (or ssh attempt) that is one failure. */
// maxretry: the test shows that one failure fewer does not ban. sshd logs one or two matching
// lines per attempt, so its jail is driven one attempt at a time instead.
const JAILS: Array<{ jail: string; from: string; maxretry?: number; findtimeS: number; failure: (from: string, to: string) => string; probe: (from: string, to: string) => string }> = [
  {
    jail: 'wordpress-login', from: '198.18.0.11', maxretry: 5, findtimeS: 600,
    failure: (from, to) => curl('f2b.pressluft.test', '/wp-login.php', { method: 'POST', from, to, extra: ['--data-binary', 'log=admin&pwd=guess'] }),
    probe: (from, to) => curl('f2b.pressluft.test', '/wp-login.php', { from, to }),
  },
  {
    jail: 'wordpress-xmlrpc', from: '198.18.0.12', maxretry: 3, findtimeS: 60,
    failure: (from, to) => curl('f2b.pressluft.test', '/xmlrpc.php', { method: 'POST', from, to, extra: ['--data-binary', '<methodCall><methodName>system.multicall</methodName></methodCall>'] }),
    probe: (from, to) => curl('f2b.pressluft.test', '/xmlrpc.php', { from, to }),
  },
  {
    jail: 'nginx-http-auth', from: '198.18.0.13', maxretry: 5, findtimeS: 600,
    failure: (from, to) => curl('f2b.pressluft.test', '/protected/', { from, to, extra: ['-u', 'tester:wrong-password'] }),
    probe: (from, to) => curl('f2b.pressluft.test', '/protected/', { from, to, extra: ['-u', 'tester:right-password'] }),
  },
  {
    jail: 'nginx-botsearch', from: '198.18.0.14', maxretry: 10, findtimeS: 600,
    failure: (from, to) => curl('f2b.pressluft.test', '/phpmyadmin/index.php', { from, to }),
    probe: (from, to) => curl('f2b.pressluft.test', '/', { from, to }),
  },
  {
    // An unknown user, as a password-guessing bot tries one; keys only, so nothing can log in.
    jail: 'sshd', from: '198.18.0.15', findtimeS: 600,
    failure: (from, to) =>
      `ssh -F /dev/null -b ${from} -o BatchMode=yes -o PubkeyAuthentication=no -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR pressluft-probe@${to} true 2>/dev/null; echo "ssh $?"`,
    probe: (from, to) => `python3 -c ${q(`import socket; s = socket.socket(); s.settimeout(5); s.bind(("${from}", 0)); s.connect(("${to}", 22)); print("open")`)} 2>/dev/null || echo closed`,
  },
];

const bannedIps = async (s: TestNodeSession, jail: string): Promise<string[]> => {
  const r = await inNode(s, `fail2ban-client status ${jail}`);
  expect(r.exitCode).toBe(0);
  return (/Banned IP list:\s*(.*)$/m.exec(r.stdout)?.[1] ?? '').split(/\s+/).filter(Boolean);
};

const BLOCKED = /^(000|closed)$/;

// fail2ban lists an address as banned before its ban action has inserted the firewall rule (and as
// unbanned before the rule is gone), so the test waits for the firewall to act, within a bound.
const probeUntil = async (s: TestNodeSession, probe: string, blocked: boolean, boundMs = 20_000): Promise<string> => {
  let seen = (await inClient(s, probe)).stdout.trim();
  for (const until = Date.now() + boundMs; BLOCKED.test(seen) !== blocked && Date.now() < until; ) {
    await new Promise((ok) => setTimeout(ok, 250));
    seen = (await inClient(s, probe)).stdout.trim();
  }
  return seen;
};

export const registerHardeningTests = (session: () => TestNodeSession): void => {
  it('answers 403 to bad requests in every WAF category and lets ordinary WordPress requests through', async () => {
    const s = session();
    await prepareNode(s);
    const good = WAF.good.map((r) => ({ ...r, headers: { ...WAF.browser, ...r.headers } }));
    const requests = [...WAF.bad, ...good];
    const r = await inNode(s, requests.map(wafCurl).join('\n'));
    const codes = r.stdout.trim().split('\n');
    const answered = requests.map((req, i) => `${codes[i]} ${req.method} ${req.path} (${req.category}${req.from ? `, from ${req.from}` : ''})`);
    expect(WAF.bad.length).toBeGreaterThanOrEqual(20);
    expect(good.length).toBeGreaterThanOrEqual(20);
    expect(new Set(WAF.bad.map((b) => b.category))).toEqual(new Set(['query string', 'request URI', 'user agent', 'referrer', 'request method', 'remote host']));
    expect(answered.slice(0, WAF.bad.length).filter((a) => !a.startsWith('403 '))).toEqual([]);
    expect(answered.slice(WAF.bad.length).filter((a) => !a.startsWith('200 '))).toEqual([]);
  }, 180_000);

  it.each(JAILS.map((j) => [j.jail, j] as const))('%s bans a client after real failures within findtime, and unbans it', async (_name, j) => {
    const s = session();
    await prepareNode(s);
    expect(await bannedIps(s, j.jail)).not.toContain(j.from);
    expect((await inClient(s, j.probe(j.from, s.linkAddr))).stdout.trim()).not.toMatch(BLOCKED);

    const firstFailure = Date.now();
    const fail = (n: number) => inClient(s, Array.from({ length: n }, () => j.failure(j.from, s.linkAddr)).join('\n'));
    const waitForBan = async (boundMs: number): Promise<string[]> => {
      let banned = await bannedIps(s, j.jail);
      for (const until = Date.now() + boundMs; !banned.includes(j.from) && Date.now() < until; ) {
        await new Promise((ok) => setTimeout(ok, 500));
        banned = await bannedIps(s, j.jail);
      }
      return banned;
    };
    let attempts = 0;
    let banned: string[] = [];
    if (j.maxretry) {
      await fail(j.maxretry - 1);
      attempts = j.maxretry - 1;
      // The log is polled every second: give the jail time to count what it got, then one more.
      expect(await waitForBan(3000)).not.toContain(j.from);
      await fail(1);
      attempts += 1;
      banned = await waitForBan(20_000);
    } else {
      while (!banned.includes(j.from) && attempts < 10) {
        await fail(1);
        attempts += 1;
        banned = await waitForBan(2000);
      }
    }
    const seenAfterS = (Date.now() - firstFailure) / 1000;
    console.log(`${s.distro} ${j.jail}: banned ${j.from} after ${attempts} failures, ${seenAfterS.toFixed(1)} s`);
    expect(banned).toContain(j.from);
    expect(seenAfterS).toBeLessThan(j.findtimeS);

    // The ban acts: the node's firewall refuses the banned client; another client still gets through.
    expect(await probeUntil(s, j.probe(j.from, s.linkAddr), true)).toMatch(BLOCKED);
    expect((await inClient(s, j.probe(OTHER_CLIENT, s.linkAddr))).stdout.trim()).not.toMatch(BLOCKED);

    const unban = await inNode(s, `fail2ban-client set ${j.jail} unbanip ${j.from}`);
    expect(unban.exitCode).toBe(0);
    expect(await bannedIps(s, j.jail)).not.toContain(j.from);
    expect(await probeUntil(s, j.probe(j.from, s.linkAddr), false)).not.toMatch(BLOCKED);
  }, 240_000);
};
