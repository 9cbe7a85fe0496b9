import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redact, type Logger } from '../logging/logger.ts';
import { ANSIBLE_ERRORS, classifyRun } from './ansible-errors.ts';
import { extraVars, renderInventory, runTarget } from './inventory.ts';
import { countListedTasks } from './list-tasks.ts';
import { OutputTail, secretVariants } from './output-tail.ts';
import { killByCmdline, runInGroup, type GroupRunResult } from './process-group.ts';
import { parseProgressLine } from './progress-event.ts';
import { RunDir } from './run-dir.ts';
import type { AnsibleRunner, Recap, RunRequest, RunResult, TaskProgress } from './runner-port.ts';

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

/** Our config and nothing else: every inherited ANSIBLE_* variable would override ansible.cfg. */
const ansibleEnv = (config: string, dir: RunDir): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ANSIBLE_'))),
  ANSIBLE_CONFIG: config,
  ANSIBLE_LOCAL_TEMP: dir.file('ansible-local-tmp'),
  // Inside the run dir, so the ControlPersist master is findable (and killable) by this path.
  ANSIBLE_SSH_CONTROL_PATH_DIR: dir.file('cp'),
  ANSIBLE_NOCOLOR: '1',
  PYTHONUNBUFFERED: '1',
});

/** Runs ansible-playbook as a local subprocess, one node per run (spec: Ansible execution). */
export class AnsiblePlaybookRunner implements AnsibleRunner {
  private readonly root: string;
  private readonly bin: string;
  private readonly graceMs: number;
  private swept: Promise<unknown> | null = null;

  constructor(private readonly o: AnsiblePlaybookRunnerOptions) {
    this.root = o.projectRoot ?? DEFAULT_ROOT;
    this.bin = o.ansiblePlaybook ?? 'ansible-playbook';
    this.graceMs = o.killGraceMs ?? 5_000;
  }

  async run(req: RunRequest): Promise<RunResult> {
    const started = Date.now();
    const deadline = started + req.timeoutMs;
    const target = runTarget.parse(req.node);
    const vars = extraVars.parse(req.vars);
    const secrets = secretVariants([...(req.secrets ?? []), ...(req.privateKey ? [req.privateKey] : [])]);
    const tail = new OutputTail(secrets);
    const log = this.o.logger.child({ component: 'ansible', playbook: req.playbook, host: target.host });
    const onOutput = (stream: 'stdout' | 'stderr', line: string) => log.info({ stream }, tail.push(line));

    // Once per runner: clear dirs (and key copies) that killed workers left behind.
    this.swept ??= RunDir.sweepAbandoned(this.o.tmpRoot).then((n) => n > 0 && this.o.logger.warn({ removed: n }, 'removed temp dirs of runs whose process died'));
    await this.swept;
    const dir = await RunDir.create(this.o.tmpRoot);
    try {
      const key = req.privateKey
        ? await dir.write('id_control_plane', req.privateKey.endsWith('\n') ? req.privateKey : `${req.privateKey}\n`)
        : null;
      const inventory = await dir.write('inventory.ini', renderInventory(target, key));
      const varsFile = await dir.write('vars.json', JSON.stringify(vars));
      const knownHosts = target.knownHostsFile ?? dir.file('known_hosts');
      const sshArgs = ['-o StrictHostKeyChecking=accept-new', `-o UserKnownHostsFile=${knownHosts}`, ...(key ? ['-o IdentitiesOnly=yes'] : [])];
      const args = ['-i', inventory, '-e', `@${varsFile}`, `--ssh-extra-args=${sshArgs.join(' ')}`, req.playbook];
      const common = {
        cwd: this.root,
        env: ansibleEnv(resolve(this.root, 'ansible/ansible.cfg'), dir),
        deadline,
        signal: req.signal,
        graceMs: this.graceMs,
      };

      const listing: string[] = [];
      const listed = await this.spawn(log, [...args, '--list-tasks'], { ...common, onOutput: (s, l) => { listing.push(l); onOutput(s, l); } });
      if (listed.stop !== null || listed.exitCode !== 0) return this.finish(log, listed, null, tail, started);
      const total = countListedTasks(listing.join('\n'));
      log.info({ total }, 'ansible run starting');

      const recaps: Recap[] = [];
      let index = 0;
      const onFd3Line = (line: string) => {
        const event = parseProgressLine(line);
        if (event === null) return log.warn({ line: redact(line, secrets) }, 'ignored malformed progress line');
        if (event.event === 'stats') return void recaps.push(...Object.values(event.hosts));
        if (!event.handler) index += 1;
        const progress: TaskProgress = {
          index,
          total,
          task: redact(event.task, secrets),
          host: target.host,
          status: event.status === 'ignored' ? 'failed' : event.status,
          handler: event.handler,
        };
        try {
          req.onProgress?.(progress);
        } catch (e) {
          // A failing observer must not break the pipe reader, and with it the run.
          log.warn({ err: e }, 'onProgress threw');
        }
      };
      const ran = await this.spawn(log, args, {
        ...common,
        env: { ...common.env, PRESSLUFT_PROGRESS_FD: '3' },
        onOutput,
        onFd3Line,
      });
      return this.finish(log, ran, recaps.length > 0 ? sumRecaps(recaps) : null, tail, started);
    } finally {
      await killByCmdline(dir.path, this.graceMs).catch((e: unknown) => log.error({ err: e }, 'could not end the ssh master'));
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

  private finish(log: Logger, run: GroupRunResult, recap: Recap | null, tail: OutputTail, started: number): RunResult {
    const errorCode = classifyRun({ stop: run.stop, exitCode: run.exitCode, recap });
    const result: RunResult = {
      ok: errorCode === null,
      exitCode: run.exitCode,
      errorCode,
      retryable: errorCode === null ? false : ANSIBLE_ERRORS[errorCode].retryable,
      recap: recap ?? EMPTY_RECAP,
      durationMs: Date.now() - started,
      outputTail: tail.text(),
    };
    log.info({ exitCode: result.exitCode, errorCode, recap: result.recap, durationMs: result.durationMs }, 'ansible run finished');
    return result;
  }
}
