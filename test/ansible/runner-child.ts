// A control-plane stand-in for runner-cleanup.test.ts: runs one long Ansible run with the key
// (read from stdin, like a secret should be) until the test SIGKILLs this process.
import { text } from 'node:stream/consumers';
import { AnsiblePlaybookRunner } from '../../src/ansible/ansible-playbook-runner.ts';
import { createLogger } from '../../src/logging/logger.ts';

const tmpRoot = process.env.RUN_ROOT ?? '';
const scratch = process.env.SCRATCH ?? '';
const privateKey = await text(process.stdin);
const runner = new AnsiblePlaybookRunner({ logger: createLogger('silent'), tmpRoot, killGraceMs: 500 });
await runner.run({
  playbook: 'test/fixtures/playbooks/sleep.yml',
  node: { host: '127.0.0.1', port: 22, user: 'root', connection: 'local' },
  vars: { scratch_dir: scratch },
  privateKey,
  timeoutMs: 120_000,
});
