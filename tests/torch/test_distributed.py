"""DistributedCompressor: CompreSSM under DDP, 2 CPU processes (gloo, loopback), bounded timeouts."""

import gc
import os
import pathlib
import socket
import time

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch import nn  # noqa: E402

from lti_reduce_torch import state_sizes  # noqa: E402
from lti_reduce_torch.adapters import LRUAdapter  # noqa: E402
from lti_reduce_torch.distributed import (DistributedCompressor, DistributedReductionError,  # noqa: E402
                                          DistributedTimeoutError, ProcessGroupNotInitializedError,
                                          RankMismatchError, UnsupportedWrapperError, state_digest)
from tests.torch.tiny_net import TinyNet, inputs_and_target  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
JOB_SECONDS = 90   # a safety net against hangs; a job takes 10-30 s


def shard(rank, step, size=8):
    """A rank's batch: different data on each rank."""
    return inputs_and_target(torch.Generator().manual_seed(1000 * rank + step), size)


def loss_of(model, rank, step):
    u, y = shard(rank, step)
    return nn.functional.mse_loss(model(u), y)


# ------------------------------------------------------------------------------------ workers
def _init(rank, port):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=__import__("datetime").timedelta(seconds=30))


def work_train(rank, port, out):
    """Train 22 steps with events at 4 and 8: digests after each event and at the end."""
    _init(rank, port)
    model = TinyNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    seen = []
    dc = DistributedCompressor(model, opt, mode="fixed", fraction=0.25, events=[4, 8], timeout=20,
                               on_reduced=lambda wrapper, report: seen.append((type(wrapper).__name__,
                                                                               report.sizes)))
    record = {"losses": [], "events": [], "sizes": [], "ddp_ok": []}
    for step in range(1, 23):
        loss = loss_of(dc.model, rank, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        record["losses"].append(float(loss.detach()))
        report = dc.step(step)
        if report is not None:
            record["events"].append((step, state_digest(model, opt)))
            record["sizes"].append(dict(report.sizes))
            live = {id(p) for p in model.parameters()}
            bound = {id(p) for g in opt.param_groups for p in g["params"]}
            record["ddp_ok"].append(dc.model.module is model and live == bound
                                    and isinstance(dc.model, nn.parallel.DistributedDataParallel))
    record["final"] = state_digest(model, opt)
    record["seen"] = seen
    record["final_sizes"] = state_sizes(model)
    # close(): the control group released (twice is fine); step refuses, the wrapper still trains
    dc.close()
    dc.close()
    try:
        dc.step(23)
    except RuntimeError as exc:
        record["closed"] = str(exc)
    loss = loss_of(dc.model, rank, 23)
    opt.zero_grad()
    loss.backward()
    opt.step()
    record["after_close"] = state_digest(model, opt)
    torch.save(record, os.path.join(out, f"rank{rank}.pt"))


def work_fault(rank, port, out):
    """A fault on rank 1 at the first event: both ranks raise the same error, nothing changed; retried next step."""
    _init(rank, port)
    model = TinyNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    dc = DistributedCompressor(model, opt, mode="fixed", fraction=0.25, events=[3, 5], timeout=20)
    record = {}
    original = LRUAdapter.rebuild
    if rank == 1:
        def broken(self, module, reduced):
            raise RuntimeError("injected fault")
        LRUAdapter.rebuild = broken
    for step in range(1, 4):
        loss = loss_of(dc.model, rank, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    before = state_digest(model, opt)
    wrapper = dc.model
    grads = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    try:
        dc.step(3)
    except DistributedReductionError as exc:
        record["error"] = (type(exc).__name__, str(exc), exc.failed_ranks, exc.step)
    LRUAdapter.rebuild = original
    record["unchanged"] = (state_digest(model, opt) == before and dc.model is wrapper
                           and dc.compressor.fired == set()
                           and all((g is None and p.grad is None) or torch.equal(g, p.grad)
                                   for g, p in zip(grads, model.parameters())))
    # training goes on with the old wrapper; the event stays due and fires at the next call
    loss = loss_of(dc.model, rank, 4)
    opt.zero_grad()
    loss.backward()
    opt.step()
    report = dc.step(4)
    record["retried"] = (report is not None and report.changed, state_digest(model, opt))
    # rank 1 computes a value one ulp off (as a different LAPACK build might): rank 0's values win
    if rank == 1:
        def nudged(self, module, reduced):
            values = original(self, module, reduced)
            name = sorted(values)[0]
            values[name] = values[name].clone()
            values[name].view(-1)[0] = torch.nextafter(values[name].view(-1)[0], torch.tensor(float("inf")))
            return values
        LRUAdapter.rebuild = nudged
    loss = loss_of(dc.model, rank, 5)
    opt.zero_grad()
    loss.backward()
    opt.step()
    dc.step(5)
    LRUAdapter.rebuild = original
    record["nudged"] = state_digest(model, opt)
    torch.save(record, os.path.join(out, f"rank{rank}.pt"))


def work_bad_input(rank, port, out):
    """Ranks disagreeing (step, layer shapes), ZeRO, FSDP, DataParallel: typed errors, nothing changed."""
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from lti_reduce_torch import reduce_
    _init(rank, port)
    record = {}
    model = TinyNet()
    zero = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.SGD, lr=0.1)
    try:
        DistributedCompressor(model, zero, energy=0.1, events=[1])
    except UnsupportedWrapperError as exc:
        record["zero"] = str(exc)
    try:
        DistributedCompressor(nn.DataParallel(model), energy=0.1, events=[1])
    except UnsupportedWrapperError as exc:
        record["dp"] = str(exc)
    from torch.distributed.fsdp import FullyShardedDataParallel, fully_shard
    record["fsdp"] = []
    for sharded in (FullyShardedDataParallel(TinyNet(), device_id=torch.device("cpu")), fully_shard(TinyNet())):
        try:
            DistributedCompressor(sharded, energy=0.1, events=[1])
        except UnsupportedWrapperError as exc:
            record["fsdp"].append(str(exc))
    odd = TinyNet()
    if rank == 1:
        reduce_(odd, order={"s5": 5})
    try:
        DistributedCompressor(odd, energy=0.1, events=[1], timeout=20)
    except RankMismatchError as exc:
        record["construction"] = str(exc).split(" ({")[0]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dc = DistributedCompressor(model, opt, mode="fixed", fraction=0.25, events=[2, 5], timeout=20)
    before = state_digest(model, opt)
    try:
        dc.step(2 + rank)          # rank 1 is one step ahead: both ranks talk (an event is due on each)
    except RankMismatchError as exc:
        record["step"] = str(exc)
    record["step_unchanged"] = state_digest(model, opt) == before and dc.compressor.fired == set()
    if rank == 1:                  # this rank's layers shrink behind the compressor's back
        reduce_(model, order={"lru": 6}, optimizers=opt)
    before = state_digest(model, opt)
    try:
        dc.step(2)
    except RankMismatchError as exc:
        record["shape"] = str(exc)
    record["shape_unchanged"] = state_digest(model, opt) == before and dc.compressor.fired == set()
    # an existing DDP wrapper: rebuilt with the arguments read back from it
    model = TinyNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True, gradient_as_bucket_view=True)
    dc2 = DistributedCompressor(ddp, opt, mode="fixed", fraction=0.25, events=[1], timeout=20)
    loss = loss_of(dc2.model, rank, 1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    dc2.step(1)
    record["existing"] = (dc2.model is not ddp, dc2.model.module is model, dc2.model.find_unused_parameters,
                          dc2.model.gradient_as_bucket_view, state_sizes(model))
    # pragmatic mode: rank 0's metric decides for every rank (rank 1's own would accept the reduction)
    model = TinyNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    dc = DistributedCompressor(model, opt, mode="pragmatic", fraction=0.25, events=[2], timeout=20)
    full = state_digest(model, opt)
    dc.step(1, metric=1.0 if rank == 0 else 5.0)
    reduced = dc.step(2)
    wrapper = dc.model
    dc.step(3, metric=0.0 if rank == 0 else 5.0)
    record["pragmatic"] = (reduced.sizes, [h["event"] for h in dc.compressor.history], state_sizes(model),
                           state_digest(model, opt) == full, dc.model is not wrapper,
                           set(map(id, dc.model.module.parameters())) == set(map(id, model.parameters())))
    torch.save(record, os.path.join(out, f"rank{rank}.pt"))


def work_timeout(rank, port, out):
    """Rank 1 hangs in the event longer than the timeout: both ranks raise DistributedTimeoutError, undone."""
    _init(rank, port)
    model = TinyNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    dc = DistributedCompressor(model, opt, mode="fixed", fraction=0.25, events=[1], timeout=2)
    if rank == 1:
        original = LRUAdapter.rebuild

        def slow(self, module, reduced):
            time.sleep(4)
            return original(self, module, reduced)
        LRUAdapter.rebuild = slow
    before = state_digest(model, opt)
    record = {}
    t0 = time.perf_counter()
    try:
        dc.step(1)
    except DistributedTimeoutError as exc:
        record["error"] = str(exc)
    record["seconds"] = time.perf_counter() - t0
    record["unchanged"] = state_digest(model, opt) == before and dc.compressor.fired == set()
    torch.save(record, os.path.join(out, f"rank{rank}.pt"))
    # the process group is unusable after a timed-out collective: exit without destroying it
    os._exit(0)


# ------------------------------------------------------------------------------------ harness
def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, name, port, out):
    globals()[name](rank, port, out)
    # the worker's DDP wrappers and control groups are gone with its frame: collect them, then
    # destroy the groups while the interpreter is alive (gloo objects left to exit can abort it)
    gc.collect()
    if dist.is_initialized():
        dist.destroy_process_group()


def run_job(worker, tmp_path, seconds=JOB_SECONDS):
    """Run ``worker(rank, port, out)`` on 2 spawned processes; kill them after ``seconds``."""
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        ctx = mp.start_processes(_entry, args=(worker.__name__, free_port(), str(tmp_path)), nprocs=2,
                                 join=False, start_method="spawn")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    deadline = time.monotonic() + seconds
    try:
        while not ctx.join(timeout=max(0.1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                raise AssertionError(f"{worker.__name__} did not finish within {seconds} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]


# ------------------------------------------------------------------------------------ tests
def test_no_process_group_is_a_typed_error():
    assert not dist.is_initialized()
    model = TinyNet()
    before = state_digest(model)
    with pytest.raises(ProcessGroupNotInitializedError, match="init_process_group"):
        DistributedCompressor(model, energy=0.1, events=[1])
    assert state_digest(model) == before


def test_ranks_bit_identical_after_events_and_training(tmp_path):
    r0, r1 = run_job(work_train, tmp_path)
    assert [s for s, _ in r0["events"]] == [4, 8] == [s for s, _ in r1["events"]]
    assert r0["events"] == r1["events"]                   # (step, (layout, values)) equal on both ranks
    assert r0["final"] == r1["final"]                     # 14 more steps with DDP: grads still synchronised
    assert r0["sizes"] == r1["sizes"] == [{"lru": 9, "s5": 9}, {"lru": 7, "s5": 7}]
    assert r0["final_sizes"] == {"lru": 7, "s5": 7}
    assert all(r0["ddp_ok"]) and all(r1["ddp_ok"])
    assert r0["seen"] == [("DistributedDataParallel", s) for s in r0["sizes"]]
    assert "closed" in r0["closed"] and "closed" in r1["closed"]
    assert r0["after_close"] == r1["after_close"] != r0["final"]   # DDP still averages the gradients
    for r in (r0, r1):
        losses = r["losses"]
        assert sum(losses[-4:]) / 4 < 0.7 * sum(losses[:4]) / 4, losses


def test_fault_on_one_rank_raises_everywhere_and_changes_nothing(tmp_path):
    r0, r1 = run_job(work_fault, tmp_path)
    assert r0["error"] == r1["error"]                     # the same typed error, the same text
    name, text, failed, step = r0["error"]
    assert name == "DistributedReductionError" and failed == (1,) and step == 3
    assert "rank 1: RuntimeError: injected fault" in text
    assert r0["unchanged"] and r1["unchanged"]
    assert r0["retried"] == r1["retried"] and r0["retried"][0]
    assert r0["nudged"] == r1["nudged"]                   # the vote saw different bytes, rank 0's were broadcast


def test_disagreeing_ranks_unsupported_wrappers_existing_ddp_and_pragmatic(tmp_path):
    r0, r1 = run_job(work_bad_input, tmp_path)
    for r in (r0, r1):
        assert "ZeroRedundancyOptimizer" in r["zero"] and "DataParallel" in r["dp"]
        assert len(r["fsdp"]) == 2 and all("(FSDP)" in m and "DistributedDataParallel" in m for m in r["fsdp"])
        assert "different steps {0: 2, 1: 3}" in r["step"] and r["step_unchanged"]
        assert r["construction"] == ("model: ranks [1] hold parameters or buffers whose names, shapes or dtypes "
                                     "differ from rank 0's")
        assert "ranks [1] disagree with rank 0 on layer shapes" in r["shape"] and r["shape_unchanged"]
    assert r0["step"] == r1["step"] and r0["shape"] == r1["shape"]
    assert r0["existing"] == r1["existing"] == (True, True, True, True, {"lru": 9, "s5": 9})
    assert r0["pragmatic"] == r1["pragmatic"] == ({"lru": 9, "s5": 9}, ["reduce", "rollback"],
                                                  {"lru": 12, "s5": 12}, True, True, True)


def test_a_hanging_rank_times_out_everywhere(tmp_path):
    r0, r1 = run_job(work_timeout, tmp_path)
    for r in (r0, r1):
        assert "timeout=2.0 s" in r["error"] and r["unchanged"]
        assert r["seconds"] < 15


@pytest.mark.parametrize("call", ["reduce_", "Compressor"])
def test_plain_api_refuses_a_data_parallel_wrapper(call):
    from lti_reduce_torch import Compressor, reduce_
    model = TinyNet()
    before = state_digest(model)
    wrapped = nn.DataParallel(model)   # a single-process stand-in for DistributedDataParallel
    with pytest.raises(UnsupportedWrapperError, match="DistributedCompressor"):
        if call == "reduce_":
            reduce_(wrapped, energy=0.1)
        else:
            Compressor(wrapped, energy=0.1, events=[1])
    assert state_digest(model) == before
