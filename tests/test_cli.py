"""The command line: devices, the kernel benchmark's JSON, one-line errors with exit 2."""
import json

import pyopencl as cl

from loop.cli import main


def test_devices_names_the_device_it_uses(capsys, device):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "platform 0" in out and "using:" in out


def test_no_opencl_platform_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.setattr(cl, "get_platforms", lambda: [])
    assert main(["devices"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pyopencl[pocl]" in err


def test_bench_kernels_json(capsys, device):
    assert main(["bench", "kernels", "--json", "--repeats", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    cases = {r["case"] for r in report["results"]}
    assert "gemm 1024x1024x1024" in cases and len(cases) == 9
    assert "conv3x3 dil2 16->16 120x160 batch16 (pixels) backward" in cases
    assert all(r["gflops"] > 0 and r["numpy_gflops"] > 0 for r in report["results"])


def test_bad_base_path_is_one_line_and_exit_2(capsys, tmp_path):
    assert main(["classify", "x.png", "--base", str(tmp_path / "missing.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "missing.txt" in err


def test_bench_train_reports_throughput(capsys, device, base_spec):
    assert main(["bench", "train", "--json", "--fine-tune", "1",
                 "--base", str(base_spec.path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["feature_images_per_second"] > 0 and report["training_images_per_second"] > 0
    tuned = report["fine_tuned"]
    assert tuned["fine_tune_blocks"] == ["b10"] and tuned["training_steps_per_second"] > 0
    assert tuned["trained_parameters"] > report["trained_parameters"]
    for r in (report, tuned):
        assert 0 <= r["held_out_accuracy"] <= 1


def test_bad_arguments_are_one_line_and_exit_2(capsys):
    import pytest
    for argv in (["live", "--window", "80x"], ["live", "--bogus"], ["bench", "what"]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith("patchloop")


def test_bench_loop_runs_the_window_arrangement(capsys, device, base_spec):
    assert main(["bench", "loop", "--json", "--clicks", "3", "--seconds", "30",
                 "--base", str(base_spec.path)]) == 0
    report = json.loads(capsys.readouterr().out)
    loop = report["loop"]
    assert loop["clicks"] == 3 and loop["frames"] > 0 and loop["verdicts_per_second"] > 0
    # Every click is accounted for, the last one too: the run waits for it to flip (or time
    # out) before it ends, and only then scores the end point.
    flips = loop["click_to_flip_ms"]
    assert flips["flipped"] + flips["not_flipped_within_s"][0] \
        + flips["before_a_second_category"] == 3
    assert [c for c, _ in loop["pixel_accuracy_by_clicks"]][-1] == 3
    assert 0 <= loop["final_balanced_accuracy"] <= 1
    recall = loop["final_pixel_recall"]
    assert list(recall) == ["background", "ball", "box"]
    assert all(r is None or 0 <= r <= 1 for r in recall.values())
    assert report["training_speed_batch16"]["patchloop_steps_per_second"] > 0
    assert loop["training_steps_per_click"] == round(loop["training_steps"] / 3, 1)
    machine = report["machine"]   # Linux, where the tests run: /proc/stat is there
    assert set(machine) == {"cores", "this_process", "other_processes", "idle", "steal"}
    assert 0 < machine["this_process"] <= 1 and 0 <= machine["steal"] <= 1
