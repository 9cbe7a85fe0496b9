# Emits one JSON object per line to the file descriptor named by PRESSLUFT_PROGRESS_FD, so the
# control plane can report "task N of M" and read the PLAY RECAP without parsing human output.
# Only task names, host names, statuses, counts and the message of a failed or unreachable result
# are written: never module arguments or other results. The runner redacts the message, which may
# carry a secret, before it is logged or stored.
from __future__ import annotations

DOCUMENTATION = """
    name: pressluft_progress
    type: notification
    short_description: JSON-lines task progress for the Pressluft control plane
    description:
      - Writes each play's task count, task results and the final stats as JSON lines to the
        file descriptor in PRESSLUFT_PROGRESS_FD. Does nothing when that variable is unset.
    requirements:
      - enabled in callbacks_enabled
"""

import json
import os

from ansible import constants as C
from ansible.playbook.block import Block
from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

STAT_KEYS = ("ok", "changed", "failures", "unreachable", "skipped", "rescued", "ignored")
# The runner shortens it to one line; this only bounds what crosses the pipe.
MAX_MESSAGE = 4000


def _count_block(block):
    count = 0
    for task in block.block:
        if isinstance(task, Block):
            count += _count_block(task)
        elif not (task.action in C._ACTION_META and task.implicit):
            count += 1
    return count


def count_tasks(play):
    """The play's tasks as `ansible-playbook --list-tasks` counts them (same walk, same tag
    filter), so the control plane needs no second ansible-playbook process to know M."""
    all_vars = play.get_variable_manager().get_vars(play=play)
    blocks = (block.filter_tagged_tasks(all_vars) for block in play.compile())
    return sum(_count_block(block) for block in blocks if block.has_tasks())


def _last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()] if isinstance(text, str) else []
    return lines[-1] if lines else ""


def failure_message(result):
    """The module's own words: msg, plus the last stderr line (a command's actual complaint).
    For a loop, the first item that failed."""
    res = result._result
    items = [r for r in res.get("results") or [] if isinstance(r, dict) and (r.get("failed") or r.get("unreachable"))]
    if items:
        res = items[0]
    msg = res.get("msg")
    text = msg if isinstance(msg, str) else (json.dumps(msg, sort_keys=True) if msg else "")
    detail = _last_line(res.get("stderr")) or ("" if text else _last_line(res.get("stdout")))
    if detail and detail not in text:
        text = "%s: %s" % (text, detail) if text else detail
    return text[:MAX_MESSAGE]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "pressluft_progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        fd = os.environ.get("PRESSLUFT_PROGRESS_FD")
        # closefd=False: the fd belongs to the process, forked workers must not close it for us.
        self._out = os.fdopen(int(fd), "w", buffering=1, closefd=False) if fd else None

    def _emit(self, payload):
        if self._out is not None:
            self._out.write(json.dumps(payload, sort_keys=True) + "\n")

    def _task(self, result, status):
        # task_name is the templated name from the worker; prefix the role as ansible's banner does.
        name = result.task_name or result._task.get_name()
        role = result._task._role
        payload = {
            "event": "task",
            "task": "%s : %s" % (role.get_name(), name) if role and " : " not in name else name,
            "host": result._host.get_name(),
            "status": status,
            "handler": isinstance(result._task, Handler),
        }
        if status in ("failed", "unreachable"):
            payload["message"] = failure_message(result)
        self._emit(payload)

    def v2_playbook_on_play_start(self, play):
        self._emit({"event": "play", "tasks": count_tasks(play)})

    def v2_playbook_on_task_start(self, task, is_conditional):
        # Names the task a timeout or a cancel interrupted; its result never comes.
        self._emit({"event": "start", "task": task.get_name()})

    def v2_playbook_on_handler_task_start(self, task):
        self._emit({"event": "start", "task": task.get_name()})

    def v2_runner_on_ok(self, result):
        self._task(result, "changed" if result._result.get("changed", False) else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._task(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._task(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._task(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for host in sorted(stats.processed.keys()):
            summary = stats.summarize(host)
            hosts[host] = {key: summary.get(key, 0) for key in STAT_KEYS}
        self._emit({"event": "stats", "hosts": hosts})
