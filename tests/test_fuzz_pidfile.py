"""Fuzzing what daemonize reads from others: a pidfile's content and the --retry schedule.

A pidfile is written by whatever ran before (another tool, a crashed daemon, a user): any
bytes in it give either a process number that can name a process (0 < pid <= pid_t's
maximum) or none, and `--status` answers without a traceback. A 23-digit number once
reached os.kill as an OverflowError (issue 14); every such content is kept under
tests/data/fuzz-regressions/daemonize-pidfile/ and replayed here.
"""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from fuzz_support import fuzz_settings, regression_cases, result_or_located_error
from inetd2systemd.daemon import control, pidfile
from inetd2systemd.errors import EXIT_STATUS_STALE

contents = st.one_of(
    st.binary(max_size=100),
    st.integers(-2**70, 2**70).map(lambda n: b"%d\n" % n),
    st.tuples(st.integers(0, 2**40), st.binary(max_size=8)).map(lambda t: b"%d" % t[0] + t[1]),
)


def check_pidfile(tmp_path, data: bytes) -> None:
    path = tmp_path / "daemon.pid"
    path.write_bytes(data)
    seen = result_or_located_error(lambda: pidfile.probe(str(path)), len(data), errors=())
    assert seen.exists and not seen.locked
    assert seen.pid is None or 0 < seen.pid <= pidfile.PID_T_MAX, seen
    outcome = control.status(str(path))  # unlocked: stale, whatever it names
    assert outcome.status == EXIT_STATUS_STALE and not outcome.failed, outcome


@fuzz_settings()
@given(data=contents)
def test_any_pidfile_content_is_a_pid_or_none(tmp_path_factory, data):
    check_pidfile(tmp_path_factory.mktemp("pid"), data)


@pytest.mark.parametrize("name,data", regression_cases("daemonize-pidfile"),
                         ids=[name for name, _ in regression_cases("daemonize-pidfile")] or None)
def test_kept_regressions(tmp_path, name, data):
    check_pidfile(tmp_path, data)


@fuzz_settings()
@given(text=st.one_of(st.text(max_size=40),
                      st.lists(st.one_of(st.integers(-5, 2**70).map(str), st.just("forever"),
                                         st.sampled_from(["TERM", "KILL", "-HUP", "SIGUSR1", "0"])),
                               max_size=6).map("/".join)))
def test_any_retry_schedule_is_steps_or_a_value_error(text):
    try:
        steps = control.parse_schedule(text, 15)
    except ValueError:
        return
    assert len([s for s in steps if s[0] != "forever"]) >= 2
