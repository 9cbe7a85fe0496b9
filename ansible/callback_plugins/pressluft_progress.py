# Emits one JSON object per line to the file descriptor named by PRESSLUFT_PROGRESS_FD, so the
# control plane can report "task N of M" and read the PLAY RECAP without parsing human output.
# Only task names, host names, statuses and counts are written: never module arguments or results,
# which may carry secrets.
from __future__ import annotations

DOCUMENTATION = """
    name: pressluft_progress
    type: notification
    short_description: JSON-lines task progress for the Pressluft control plane
    description:
      - Writes task results and the final stats as JSON lines to the file descriptor in
        PRESSLUFT_PROGRESS_FD. Does nothing when that variable is unset.
    requirements:
      - enabled in callbacks_enabled
"""

import json
import os

from ansible.playbook.handler import Handler
from ansible.plugins.callback import CallbackBase

STAT_KEYS = ("ok", "changed", "failures", "unreachable", "skipped", "rescued", "ignored")


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
        self._emit(
            {
                "event": "task",
                "task": "%s : %s" % (role.get_name(), name) if role and " : " not in name else name,
                "host": result._host.get_name(),
                "status": status,
                "handler": isinstance(result._task, Handler),
            }
        )

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
