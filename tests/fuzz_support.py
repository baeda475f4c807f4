"""What every fuzz test shares: the example budget, the property, the regression corpus.

The property for every parser is the same: any input yields either a result or the
project's own error carrying a location, and does so in time that grows linearly with
the input. `FUZZ_EXAMPLES` sets how many generated inputs each test tries: small by
default (the suite's bounded run), large in `scripts/fuzz-campaign.sh`. Every input that
ever broke a parser is kept as a file under `tests/data/fuzz-regressions/<parser>/` and
replayed by that parser's test, so a fixed crash stays fixed.

The campaign finds the fuzz targets by name (`pytest -k fuzz`): a target outside a
tests/test_fuzz_*.py file has `fuzz` in its own name.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, settings

from inetd2systemd.errors import ConfigError

REGRESSIONS = Path(__file__).resolve().parent / "data" / "fuzz-regressions"

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))


def fuzz_settings(**overrides) -> settings:
    """Hypothesis settings for a fuzz test: the shared budget, no per-example deadline
    (the linear-time property below is the bound), no health check that would fail a
    slow but correct strategy."""
    options = dict(max_examples=FUZZ_EXAMPLES, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                          HealthCheck.filter_too_much])
    options.update(overrides)
    return settings(**options)


def regression_cases(parser: str) -> list[tuple[str, bytes]]:
    """Every kept input for one parser, as (file name, bytes), in a stable order."""
    folder = REGRESSIONS / parser
    if not folder.is_dir():
        return []
    return [(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]


def time_allowance(size: int) -> float:
    """CPU seconds an input of `size` units (bytes, lines) may take: generous, so that
    only a hang or a super-linear blow-up fails, never a slow machine."""
    return 2.0 + size * 2e-4


def result_or_located_error(parse: Callable[[], object], size: int,
                            errors: tuple[type[BaseException], ...] = (ConfigError,)) -> object:
    """Run one parse; it must return, or raise one of `errors` that names a line, within
    `time_allowance(size)`. Returns the result, or the error it raised."""
    started = time.process_time()
    try:
        outcome = parse()
    except errors as exc:
        if isinstance(exc, ConfigError):
            assert exc.line is not None, f"error without a line: {exc}"
        outcome = exc
    spent = time.process_time() - started
    assert spent <= time_allowance(size), f"{spent:.2f} s of CPU for an input of {size}"
    return outcome


# What growth_ratio may return for linear work: half the square of the default factor.
# Linear work measures 10-15 on an idle machine, and up to about 33 with the whole suite
# running beside it; quadratic work is 100 or more.
BELOW_QUADRATIC = 50


def growth_ratio(run: Callable[[int], object], small: int, factor: int = 10,
                 rounds: int = 5) -> float:
    """CPU time of run(small * factor) over run(small), the best of `rounds` each: about
    `factor` for linear work, `factor` squared for quadratic. Tests assert it stays below
    BELOW_QUADRATIC, which holds on a loaded machine where an absolute time would not.
    The cyclic garbage collector is off while measuring: its passes grow with everything
    the process holds, not with the work measured."""
    timings = []
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for size in (small, small * factor):
            best = float("inf")
            for _ in range(rounds):
                started = time.process_time()
                run(size)
                best = min(best, time.process_time() - started)
            timings.append(max(best, 1e-4))
    finally:
        if was_enabled:
            gc.enable()
    return timings[1] / timings[0]


def assert_linear(make: Callable[[int], object], read: Callable[[object], object],
                  small: int = 1000, factor: int = 10, bound: float = BELOW_QUADRATIC) -> None:
    """Reading make(small * factor) costs well under the square of reading make(small)
    (about `factor` times for linear work, `factor` squared for quadratic)."""
    inputs = {n: make(n) for n in (small, small * factor)}
    ratio = growth_ratio(lambda n: read(inputs[n]), small, factor)
    assert ratio < bound, f"{factor}x the input took {ratio:.0f}x the time"
