"""`patchloop eval SESSION_OR_PLUGIN DATA_DIR`: per-category precision and recall, the
confusion matrix (a table, and a picture with --plot), and the images in each off-diagonal
cell, so a user can go and look at them."""
from __future__ import annotations

import json
import sys

import cv2
import numpy as np

from loop.core.frame_pipeline import BASE_INPUT
from loop.store.images import load_folder_image
from loop.core.verdict import frame_verdict
from loop.errors import UserError
from loop.store.data_folder import scan_folder


def open_patch_core(path: str, base_path: str | None):
    """A core with a session's newest snapshot, or a plugin's weights."""
    if path.endswith(".specialneurons"):
        from loop.faces.apply import load_plugin_core
        return load_plugin_core(path, base_path)[0]
    from loop.base.loading import open_base
    from loop.base.network import BaseNetwork
    from loop.core.engine import LoopCore
    from loop.core.snapshot import load_dense
    from loop.store.records import SessionFormatError
    from loop.store.session_loader import load_session
    from patchloop_kernels.runtime import Device
    try:  # read-only: the journal is read, never cut; read-only media are fine
        loaded = load_session(path, frames=False, arrays=True)
    except SessionFormatError as exc:
        raise UserError(str(exc)) from exc
    for line in loaded.warnings:
        print(f"patchloop: warning: {line}", file=sys.stderr)
    snapshot = loaded.state.latest_snapshot()
    if snapshot is None:
        raise UserError(f"{path}: holds no snapshot to evaluate")
    spec = loaded.state.spec
    base = BaseNetwork(Device.default(), open_base(base_path)) if spec.topology == "head" else None
    core = LoopCore(spec, base=base)
    load_dense(core, snapshot.weights)
    return core


def evaluate(core, folder) -> dict:
    tags = {c.tag: c.index for c in core.spec.categories}
    missing = [c.tag for c in folder.categories if c.tag not in tags]
    if missing:
        raise UserError(f"{folder.root}: categories {', '.join(missing)} are not the patch's")
    verdicts, skipped = [], []
    for path, position in folder.images:
        image = load_folder_image(path, BASE_INPUT)
        if image is None:
            skipped.append(str(path))
            continue
        probabilities = core.verdict_on_features(core.features(image))
        predicted, _ = frame_verdict(probabilities, core.spec.threshold, core.spec.pooling)
        verdicts.append((tags[folder.categories[position].tag], predicted, str(path)))
    return {**confusion_report(core.spec.names, verdicts), "unreadable": skipped}


def confusion_report(names, verdicts) -> dict:
    """verdicts: [(true category, verdict's category, image path), ...] -> the confusion
    matrix (rows: truth, columns: verdict), accuracy, per-category precision and recall, and
    the images in each off-diagonal cell. `eval` and the training window's result show it."""
    k = len(names)
    matrix = np.zeros((k, k), np.int64)
    cells: dict[tuple[int, int], list[str]] = {}
    for truth, predicted, path in verdicts:
        matrix[truth, predicted] += 1
        if truth != predicted:
            cells.setdefault((truth, predicted), []).append(path)
    per_category = {}
    for c in range(k):
        tp = matrix[c, c]
        per_category[names[c]] = {
            "precision": round(float(tp / matrix[:, c].sum()), 4) if matrix[:, c].sum() else None,
            "recall": round(float(tp / matrix[c].sum()), 4) if matrix[c].sum() else None,
            "images": int(matrix[c].sum())}
    total = int(matrix.sum())
    return {"categories": list(names), "confusion": matrix.tolist(),
            "accuracy": round(float(np.trace(matrix) / total), 4) if total else None,
            "per_category": per_category,
            "mistakes": [{"truth": names[t], "predicted": names[p], "images": paths}
                         for (t, p), paths in sorted(cells.items())]}


def confusion_table(report: dict) -> list[str]:
    """The confusion matrix as aligned text lines (a header, then one row per truth)."""
    names = report["categories"]
    width = max(10, *(len(n) for n in names)) + 2
    lines = ["truth \\ verdict".ljust(width) + "".join(n[:width - 2].rjust(width) for n in names)]
    for name, row in zip(names, report["confusion"]):
        lines.append(name.ljust(width) + "".join(str(v).rjust(width) for v in row))
    return lines


def plot_confusion(report: dict, path: str) -> None:
    matrix = np.array(report["confusion"], np.float64)
    names = report["categories"]
    k = len(names)
    cell, margin = 60, 140
    image = np.full((margin + cell * k + 20, margin + cell * k + 20, 3), 255, np.uint8)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    for t in range(k):
        cv2.putText(image, names[t][:14], (5, margin + t * cell + cell // 2),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        cv2.putText(image, names[t][:14], (margin + t * cell + 2, margin - 10),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        for p in range(k):
            shade = int(255 - 200 * rows[t, p])
            x, y = margin + p * cell, margin + t * cell
            cv2.rectangle(image, (x, y), (x + cell - 2, y + cell - 2), (shade, shade, 255), -1)
            cv2.putText(image, str(int(matrix[t, p])), (x + 8, y + cell // 2 + 5),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1)
    cv2.putText(image, "rows: truth, columns: verdict", (5, 20), cv2.FONT_HERSHEY_SIMPLEX,
                0.5, (0, 0, 0), 1)
    if not cv2.imwrite(path, image):
        raise UserError(f"{path}: cannot write the picture")


def run(args) -> int:
    folder = scan_folder(args.data_dir)
    if folder.problems:
        for problem in folder.problems:
            print(f"patchloop: {problem}", file=sys.stderr)
        raise UserError(f"{args.data_dir}: {len(folder.problems)} problems (listed above)")
    core = open_patch_core(args.patch, args.base)
    report = evaluate(core, folder)
    core.close()
    if args.plot:
        plot_confusion(report, args.plot)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for line in confusion_table(report):
        print(line)
    for name, stats in report["per_category"].items():
        print(f"{name}: precision {stats['precision']}, recall {stats['recall']} "
              f"({stats['images']} images)")
    for mistake in report["mistakes"]:
        print(f"{mistake['truth']} taken for {mistake['predicted']}: "
              + ", ".join(mistake["images"]))
    print(f"accuracy {report['accuracy']}")
    return 0
