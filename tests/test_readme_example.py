"""The README's core-API example runs as written."""
import re
from pathlib import Path


def test_readme_core_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATCHLOOP_CACHE", str(tmp_path))
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    ball, category, confidence = capsys.readouterr().out.split()
    assert ball == "1"
    assert (tmp_path / "efficientnet-lite0" / "efficientnet-lite0.txt").is_file()
