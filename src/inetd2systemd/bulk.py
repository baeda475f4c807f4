"""Pausing Python's cyclic garbage collector around bulk work.

Reading a configuration or rendering its units builds hundreds of thousands of small
objects that never form cycles (strings, tuples, frozen dataclasses); each allocation
burst makes the cyclic collector walk all of them again. Measured on a 5,000-service
xinetd.d tree: parsing takes 0.40 s with the collector paused, 0.50-0.80 s without.
Nothing here creates cycles that would need it, and it is re-enabled on the way out.
"""

from __future__ import annotations

import functools
import gc


def gc_paused(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if not gc.isenabled():  # nested, or the caller paused it
            return func(*args, **kwargs)
        gc.disable()
        try:
            return func(*args, **kwargs)
        finally:
            gc.enable()
    return wrapper
