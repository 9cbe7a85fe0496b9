import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';

/**
 * Keeps N saga worker processes alive: one that dies (the crash tests kill them) is replaced,
 * up to a bound, as a process supervisor would.
 */
export class WorkerPool {
  private readonly workers = new Set<ChildProcess>();
  private stopped = false;
  restarts = 0;

  constructor(
    private readonly size: number,
    private readonly env: NodeJS.ProcessEnv,
    private readonly maxRestarts = 60,
  ) {}

  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.size }, () => this.spawnOne()));
  }

  private spawnOne(): Promise<void> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/saga-worker.ts'], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // WORKER_LOG_DIR keeps each worker's log for debugging a failed run.
    const logDir = process.env.WORKER_LOG_DIR;
    if (logDir) child.stderr?.pipe(createWriteStream(`${logDir}/worker-${child.pid}.log`));
    else child.stderr?.resume();
    this.workers.add(child);
    child.once('exit', () => {
      this.workers.delete(child);
      if (!this.stopped && this.restarts < this.maxRestarts) {
        this.restarts++;
        void this.spawnOne();
      }
    });
    return new Promise((resolve) => {
      child.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) resolve();
      });
      child.once('exit', () => resolve());
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const exits = [...this.workers].map((w) => new Promise((r) => w.once('exit', r)));
    for (const w of this.workers) w.kill('SIGTERM');
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 10_000))]);
    for (const w of this.workers) w.kill('SIGKILL');
  }
}
