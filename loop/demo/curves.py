"""What an accuracy-against-clicks curve says: when it first reaches a goal, and how far it
falls back afterwards (a patch whose answers swing from one click to the next)."""
from __future__ import annotations


def clicks_to(curve: list, goal: float):
    """The clicks at the first evaluation at or above `goal`; None when never reached."""
    return next((c for c, a in curve if a >= goal), None)


def largest_drop_after(curve: list, goal: float):
    """The largest fall between consecutive evaluations once `goal` was first reached
    (0 when it never fell; None when the goal was never reached)."""
    start = next((i for i, (_, a) in enumerate(curve) if a >= goal), None)
    if start is None:
        return None
    return max([0.0] + [curve[i][1] - curve[i + 1][1] for i in range(start, len(curve) - 1)])


def curve_report(cells: list, pixels: list) -> dict:
    """Both curves (per cell and per pixel) with their milestones, rounded for JSON."""
    def milestones(curve, prefix):
        drop = largest_drop_after(curve, 0.90)
        return {f"{prefix}clicks_to_90": clicks_to(curve, 0.90),
                f"{prefix}clicks_to_95": clicks_to(curve, 0.95),
                f"{prefix}clicks_to_97": clicks_to(curve, 0.97),
                f"{prefix}largest_drop_after_90": None if drop is None else round(drop, 4)}
    return {**milestones(cells, ""), **milestones(pixels, "pixel_"),
            "final_balanced_accuracy": round(cells[-1][1], 4),
            "final_pixel_balanced_accuracy": round(pixels[-1][1], 4),
            "accuracy_by_clicks": [[c, round(a, 4)] for c, a in cells],
            "pixel_accuracy_by_clicks": [[c, round(a, 4)] for c, a in pixels]}
