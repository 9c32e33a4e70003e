"""FLOP counting (including CPU fused attention) and the throughput utility."""

import json

import torch
import torch.nn.functional as F

from tokenmerge.experiments import count_flops, ideal_speedup, measure_interleaved, measure_throughput, write_json


def test_counts_linear_and_cpu_fused_attention():
    lin = torch.nn.Linear(16, 32)
    assert count_flops(lin, torch.randn(4, 16)) == 2 * 4 * 16 * 32
    q = torch.randn(2, 3, 10, 8)
    expected = 2 * (2 * 2 * 3 * 10 * 10 * 8)
    assert count_flops(F.scaled_dot_product_attention, q, q, q) == expected
    assert count_flops(F.scaled_dot_product_attention, q, q, q, attn_mask=torch.zeros(2, 1, 1, 10)) == expected


def test_ideal_speedup():
    assert ideal_speedup(300, 150) == 2.0


def test_measure_throughput_records_setup_and_writes_json(tmp_path):
    calls = []
    result = measure_throughput(lambda: calls.append(1), batch_size=8, warmup=2, repeats=5, model="toy", r=4)
    assert len(calls) == 7 and len(result.seconds_per_batch) == 5
    assert result.samples_per_s > 0 and result.threads == torch.get_num_threads()
    row = result.to_dict()
    assert row["r"] == 4 and row["model"] == "toy" and row["dtype"] == "float32" and row["batch_size"] == 8
    path = write_json([result], tmp_path / "out" / "bench.json", command="test")
    payload = json.loads(path.read_text())
    assert payload["command"] == "test" and payload["results"][0]["r"] == 4


def test_measure_interleaved_alternates_variants():
    order = []
    results = measure_interleaved(
        {"a": lambda: order.append("a"), "b": lambda: order.append("b")}, batch_size=2, warmup=1, rounds=3, r=8
    )
    assert order == ["a", "b"] + ["a", "b"] * 3
    assert results["a"].repeats == 3 and results["b"].to_dict()["variant"] == "b" and results["a"].to_dict()["r"] == 8


def test_cpu_runs_say_cpu_and_name_the_processor_separately():
    from tokenmerge.experiments.throughput import device_name, processor_name

    result = measure_throughput(lambda: None, batch_size=1, warmup=0, repeats=1)
    assert device_name("cpu") == "cpu" and result.device == "cpu"
    assert result.processor == processor_name() and result.processor not in ("", "cpu")
    assert result.to_dict()["processor"] == result.processor


def test_interleaved_timing_on_one_thread_records_it_and_restores_the_count():
    import torch

    from tokenmerge.experiments.throughput import measure_interleaved

    seen = []
    before = torch.get_num_threads()
    results = measure_interleaved(
        {"a": lambda: seen.append(torch.get_num_threads())}, batch_size=1, rounds=2, warmup=1, threads=1
    )
    assert set(seen) == {1} and results["a"].threads == 1 and torch.get_num_threads() == before
