"""The bench's mix lines: a workflow stock moto cannot run is said so and left out of the
mix's ratio; one without a bench case is excluded with its reason."""

from __future__ import annotations

from careflow.kit.registry import workflows
from careflow.localcloud.bench import MixResult, mix_lines


def test_an_unsupported_workflow_is_named_and_left_out_of_the_mix_ratio():
    benched = [wf.id for wf in workflows() if wf.bench is not None]
    assert len(benched) >= 2
    local = {w: MixResult(w, executions=60, seconds=2.0) for w in benched}  # 30/s each
    stock = {w: MixResult(w, executions=10, seconds=5.0) for w in benched}  # 2/s each
    odd = benched[0]
    stock[odd] = MixResult(odd, unsupported="States.Runtime: no such thing")
    lines = mix_lines(local, stock)
    assert len(lines) == len(workflows()) + 1
    assert (
        f"mix workflow={odd} local_exec_per_s=30.0 stock=unsupported "
        "(States.Runtime: no such thing)"
    ) in lines
    assert (
        f"mix workflow={benched[1]} local_exec_per_s=30.0 stock_exec_per_s=2.00 ratio=15.0" in lines
    )
    for wf in workflows():
        if wf.bench is None:
            assert (
                f"mix workflow={wf.id} excluded ({wf.bench_excluded or 'no bench case'})" in lines
            )
    assert lines[-1] == (
        f"ratio=15.0 local_exec_per_s=30.0 stock_exec_per_s=2.00 workflows={len(benched) - 1} "
        f"stock_unsupported={odd}"
    )
