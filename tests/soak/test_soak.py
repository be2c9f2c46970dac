"""The soak in CI size: 500 mixed invocations (buffered, streaming, duplex uploads, errors,
timeouts) at concurrency 4 through ``duplexlambda serve`` with our runtime as its child.
The full run is ``python benchmarks/soak.py`` (10,000; docs/reliability.md has its table)."""

from __future__ import annotations

from benchmarks import soak


def test_soak_500_mixed_invocations() -> None:
    result = soak.run(invocations=500, window=100, concurrency=4)
    print(soak.report(result))
    assert result.failures == [], result.failures[:10]
    assert sum(w.invocations for w in result.windows) == 500
    # every kind ran, and every kind's outcome was checked
    kinds = {k for w in result.windows for k, n in w.kinds.items() if n}
    assert kinds == set(soak.KINDS)
    failed = [text for text, passed in result.verdicts if not passed]
    assert not failed, failed
