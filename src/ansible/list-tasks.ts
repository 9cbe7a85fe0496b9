/**
 * Counts the tasks in `ansible-playbook --list-tasks` output, which prints each task as
 * "      <name>\tTAGS: [...]" under an indented "tasks:" line per play (handlers are not listed).
 */
export const countListedTasks = (output: string): number =>
  output.split('\n').filter((line) => /^ {6}\S.*\tTAGS: \[/.test(line)).length;
