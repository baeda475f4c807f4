# A callback plugin for the tests: every task result, whole (diff included, which the
# `tree` callback leaves out), appended as one JSON line per host to
# $I2S_ANSIBLE_RESULTS/HOST.jsonl.
from __future__ import annotations

DOCUMENTATION = """
    name: results
    type: aggregate
    short_description: write each host's task results as JSON lines
    description:
        - Appends each task result to $I2S_ANSIBLE_RESULTS/HOST.jsonl (nothing when unset).
    author: inetd2systemd developers
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "results"
    CALLBACK_NEEDS_ENABLED = True

    def _write(self, result, status: str) -> None:
        directory = os.environ.get("I2S_ANSIBLE_RESULTS")
        if not directory:
            return
        record = dict(result._result, _status=status, _task=result._task.get_name())
        with open(os.path.join(directory, f"{result._host.get_name()}.jsonl"), "a") as f:
            f.write(json.dumps(record, default=str) + "\n")

    def v2_runner_on_ok(self, result):
        self._write(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._write(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._write(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._write(result, "unreachable")
