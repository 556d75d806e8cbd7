"""What folder training came to, in words: the same lines in the terminal and on the
training window's result screen. Built after the session is saved, so every path it names
is a file that exists."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TrainingResult:
    session: str                  # the session file written
    steps: int
    planned_steps: int
    held_out_accuracy: float      # nan without held-out images
    held_out_images: int
    confusion: dict | None        # eval_folder.confusion_report of the held-out images
    stopped_early: bool           # Esc, Ctrl+C or the window closed before the last epoch
    patch_files: list = field(default_factory=list)   # .specialneurons saved by stop-N-show

    def headline(self) -> str:
        if self.stopped_early:
            return f"training stopped at step {self.steps} of {self.planned_steps}"
        return f"training done: {self.steps} steps of {self.planned_steps}"

    def accuracy_line(self) -> str:
        if not self.held_out_images:
            return "no held-out images (--held-out 0): no accuracy measured"
        return (f"held-out accuracy {self.held_out_accuracy:.3f} on {self.held_out_images} "
                f"image{'s' if self.held_out_images != 1 else ''}")

    def file_lines(self) -> list[str]:
        lines = [f"session: {self.session}"]
        lines += [f"patch snapshot: {p}" for p in self.patch_files] or \
            [f"no patch file yet: patchloop export {self.session} -o NAME.specialneurons"]
        return lines
