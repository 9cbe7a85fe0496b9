import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AppError } from '../errors/app-error.ts';
import { redact, type Logger } from '../logging/logger.ts';
import { ANSIBLE_ERRORS, classifyRun } from './ansible-errors.ts';
import { ansibleEnv, secretsFromEnv } from './ansible-env.ts';
import { summarizeFailure, type FailedTask } from './failure-summary.ts';
import { knownHostsLine, sshRefusal, strictHostKeyArgs, type SshRefusal } from './host-key.ts';
import { hostKeyMismatchResult } from './host-key-mismatch.ts';
import { extraVars, renderInventory, runTarget } from './inventory.ts';
import { OutputTail, secretVariants } from './output-tail.ts';
import { killByCmdline, runInGroup, type GroupRunResult } from './process-group.ts';
import { parseProgressLine } from './progress-event.ts';
import { RunDir, sweepAbandonedRuns } from './run-dir.ts';
import type { AnsibleRunner, Recap, RunRequest, RunResult, RunTarget, TaskProgress } from './runner-port.ts';
import { SshAgentError, startRunAgent, type RunAgent } from './ssh-agent.ts';
import { renderUnsafeVars } from './unsafe-vars.ts';

export interface AnsiblePlaybookRunnerOptions {
  logger: Logger;
  /** Where ansible/ and the playbooks live; defaults to this checkout. */
  projectRoot?: string;
  /** Parent of the per-job temp dirs; defaults to os.tmpdir(). */
  tmpRoot?: string;
  /** Between SIGTERM and SIGKILL when a run is stopped. */
  killGraceMs?: number;
  /** The ansible-playbook binary. */
  ansiblePlaybook?: string;
  /**
   * The control plane's own secrets (Hetzner token, secret key, API token): redacted from every
   * run's output, like each request's `secrets`. Their env values are redacted even without this.
   */
  secrets?: readonly string[];
}

/** What a run saw that the one-line error message is made of. */
interface RunFacts {
  failed: FailedTask | null;
  lastTask: string | null;
  errorLine: string | null;
  /** ssh refused before any task: the host key or the control plane's key (host-key.ts). */
  refusal: SshRefusal | null;
}

interface FinishInput {
  run: GroupRunResult;
  recap: Recap | null;
  tail: OutputTail;
  facts: RunFacts;
  started: number;
  target: RunTarget;
  timeoutMs: number;
  secrets: readonly string[];
}

const DEFAULT_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const EMPTY_RECAP: Recap = { ok: 0, changed: 0, failures: 0, unreachable: 0, skipped: 0, rescued: 0, ignored: 0 };

const sumRecaps = (recaps: Recap[]): Recap =>
  recaps.reduce(
    (a, r) => ({
      ok: a.ok + r.ok,
      changed: a.changed + r.changed,
      failures: a.failures + r.failures,
      unreachable: a.unreachable + r.unreachable,
      skipped: a.skipped + r.skipped,
      rescued: a.rescued + r.rescued,
      ignored: a.ignored + r.ignored,
    }),
    EMPTY_RECAP,
  );

/** Runs ansible-playbook as a local subprocess, one node per run (spec: Ansible execution). */
export class AnsiblePlaybookRunner implements AnsibleRunner {
  private readonly root: string;
  private readonly bin: string;
  private readonly graceMs: number;
  private swept: Promise<unknown> | null = null;

  constructor(private readonly o: AnsiblePlaybookRunnerOptions) {
    // ssh options reach ansible-playbook as one --ssh-extra-args string that Ansible splits on
    // whitespace: a run dir (known_hosts, agent key) under a path with a space would break every run.
    const tmpRoot = o.tmpRoot ?? tmpdir();
    if (/\s/.test(tmpRoot)) throw new AppError('CONFIG_INVALID', `TMPDIR must not contain whitespace (the Ansible runs' ssh options are split on it): ${JSON.stringify(tmpRoot)}`, false);
    this.root = o.projectRoot ?? DEFAULT_ROOT;
    this.bin = o.ansiblePlaybook ?? 'ansible-playbook';
    this.graceMs = o.killGraceMs ?? 5_000;
  }

  async run(req: RunRequest): Promise<RunResult> {
    const started = Date.now();
    const target = runTarget.parse(req.node);
    const vars = extraVars.parse(req.vars);
    const secrets = secretVariants([...(this.o.secrets ?? []), ...secretsFromEnv(), ...(req.secrets ?? []), ...(req.privateKey ? [req.privateKey] : [])]);
    const tail = new OutputTail(secrets);
    const facts: RunFacts = { failed: null, lastTask: null, errorLine: null, refusal: null };
    const log = this.o.logger.child({ component: 'ansible', playbook: req.playbook, host: target.host });
    const onOutput = (stream: 'stdout' | 'stderr', line: string) => {
      const clean = tail.push(line);
      if (facts.errorLine === null && clean.startsWith('ERROR!')) facts.errorLine = clean;
      facts.refusal ??= clean.includes('UNREACHABLE!') ? sshRefusal(clean) : null;
      log.info({ stream }, clean);
    };
    const finish = (run: GroupRunResult, recap: Recap | null) => this.finish(log, { run, recap, tail, facts, started, target, timeoutMs: req.timeoutMs, secrets });

    // Once per runner, in case start-up did not sweep (sweepAbandonedRuns): what killed workers left.
    this.swept ??= sweepAbandonedRuns(this.o.logger, this.o.tmpRoot);
    await this.swept;
    const dir = await RunDir.create(this.o.tmpRoot);
    let agent: RunAgent | null = null;
    try {
      if (req.privateKey) {
        try {
          agent = await startRunAgent(dir, req.privateKey, { lifetimeSec: req.timeoutMs / 1000 + 60, graceMs: this.graceMs });
        } catch (e) {
          if (!(e instanceof SshAgentError)) throw e;
          onOutput('stderr', `pressluft: ${e.message}`);
          facts.errorLine = e.message;
          return await finish({ exitCode: 250, stop: null }, null);
        }
      }
      const inventory = await dir.write('inventory.ini', renderInventory(target));
      const varsFile = await dir.write('vars.yml', renderUnsafeVars(vars));
      const identity = agent ? ['-o IdentitiesOnly=yes', `-o IdentityFile=${agent.publicKeyFile}`] : [];
      // With a recorded host key: that key only, checked strictly. Without (tests only): a fresh file, first key trusted for this run.
      const hostKeyArgs = target.hostKey
        ? strictHostKeyArgs(await dir.write('known_hosts', knownHostsLine(target.host, target.port, target.hostKey)))
        : ['-o StrictHostKeyChecking=accept-new', `-o UserKnownHostsFile=${dir.file('known_hosts')}`];
      const sshArgs = [...hostKeyArgs, ...identity];
      const args = ['-i', inventory, '-e', `@${varsFile}`, `--ssh-extra-args=${sshArgs.join(' ')}`, req.playbook];
      const env = ansibleEnv({
        config: resolve(this.root, 'ansible/ansible.cfg'),
        localTemp: dir.file('ansible-local-tmp'),
        controlPathDir: dir.file('cp'),
        authSock: agent?.sock,
        progressFd: 3,
      });

      const recaps: Recap[] = [];
      let total = 0;
      let index = 0;
      const onFd3Line = (line: string) => {
        const event = parseProgressLine(line);
        if (event === null) return log.warn({ line: redact(line, secrets) }, 'ignored malformed progress line');
        if (event.event === 'stats') return void recaps.push(...Object.values(event.hosts));
        if (event.event === 'play') {
          total += event.tasks;
          return log.info({ total }, 'ansible play starting');
        }
        if (event.event === 'start') return void (facts.lastTask = redact(event.task, secrets));
        if (!event.handler) index += 1;
        const task = redact(event.task, secrets);
        facts.lastTask = task;
        if (event.status === 'failed' || event.status === 'unreachable') facts.failed = { task, status: event.status, message: event.message ?? '' };
        if (event.status === 'unreachable') facts.refusal ??= sshRefusal(event.message ?? '');
        // ssh never let the task start: a refused host key is not a task's progress.
        if (facts.refusal?.kind === 'host_key') return;
        const progress: TaskProgress = { index, total, task, host: target.host, status: event.status === 'ignored' ? 'failed' : event.status, handler: event.handler };
        try {
          req.onProgress?.(progress);
        } catch (e) {
          // A failing observer must not break the pipe reader, and with it the run.
          log.warn({ err: e }, 'onProgress threw');
        }
      };
      const ran = await this.spawn(log, args, { cwd: this.root, env, deadline: started + req.timeoutMs, signal: req.signal, graceMs: this.graceMs, onOutput, onFd3Line });
      return await finish(ran, recaps.length > 0 ? sumRecaps(recaps) : null);
    } finally {
      await agent?.stop().catch((e: unknown) => log.error({ err: e }, 'could not stop the ssh-agent'));
      // Whatever still names the run dir: the ssh mux master (it daemonises out of our group).
      await killByCmdline(`${dir.path}/`, this.graceMs).catch((e: unknown) => log.error({ err: e }, 'could not end the ssh master'));
      await dir.remove();
    }
  }

  private async spawn(log: Logger, args: string[], o: Parameters<typeof runInGroup>[2]): Promise<GroupRunResult> {
    try {
      return await runInGroup(this.bin, args, o);
    } catch (e) {
      // Could not start (missing binary) or could not kill: no exit code to classify.
      log.error({ err: e }, 'ansible-playbook could not be run');
      o.onOutput('stderr', `pressluft: ${(e as Error).message}`);
      return { exitCode: 250, stop: null };
    }
  }

  private async finish(log: Logger, f: FinishInput): Promise<RunResult> {
    const { run, recap, facts } = f;
    const classified = classifyRun({ stop: run.stop, exitCode: run.exitCode, recap });
    if (classified === 'ANSIBLE_HOST_UNREACHABLE' && facts.refusal?.kind === 'host_key' && f.target.hostKey) {
      const { host, port, hostKey } = f.target;
      return hostKeyMismatchResult(log, { host, port, hostKey, sshSaid: facts.refusal.presentedFingerprint, exitCode: run.exitCode, recap: recap ?? EMPTY_RECAP, started: f.started, outputTail: f.tail.text(), secrets: f.secrets });
    }
    const errorCode = classified === 'ANSIBLE_HOST_UNREACHABLE' && facts.refusal?.kind === 'auth' ? 'ANSIBLE_AUTH_FAILED' : classified;
    // A failure the recap does not count (ignored, rescued) is not what ended the run.
    const failed = errorCode === 'ANSIBLE_HOST_FAILED' || errorCode === 'ANSIBLE_HOST_UNREACHABLE' || errorCode === 'ANSIBLE_AUTH_FAILED' ? facts.failed : null;
    const result: RunResult = {
      ok: errorCode === null,
      exitCode: run.exitCode,
      errorCode,
      retryable: errorCode === null ? false : ANSIBLE_ERRORS[errorCode].retryable,
      recap: recap ?? EMPTY_RECAP,
      durationMs: Date.now() - f.started,
      outputTail: f.tail.text(),
      ...(errorCode === null
        ? {}
        : { errorMessage: summarizeFailure({ errorCode, exitCode: run.exitCode, host: f.target.host, failed, lastTask: facts.lastTask, errorLine: facts.errorLine, timeoutMs: f.timeoutMs }, f.secrets) }),
    };
    log.info({ exitCode: result.exitCode, errorCode, errorMessage: result.errorMessage, recap: result.recap, durationMs: result.durationMs }, 'ansible run finished');
    return result;
  }
}
