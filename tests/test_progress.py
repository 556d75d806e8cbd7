"""Progress bars are for terminals; a log gets one plain line per stage."""
import io

from loop.faces.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_on_a_terminal_and_plain_lines_in_a_log():
    tty, log = Terminal(), io.StringIO()
    for stream in (tty, log):
        bar = ProgressBar("features", 10, stream)
        for i in range(10):
            bar.update(i + 1, "loss 0.1")
        bar.done("done")
    assert "\r" in tty.getvalue() and "#" in tty.getvalue()
    assert "\r" not in log.getvalue() and log.getvalue().count("\n") == 1
    assert log.getvalue().startswith("features: 10 in ")


def test_slow_items_read_as_seconds_each():
    from loop.faces.progress import _pace
    assert _pace(1, 37.4) == "37.4 s each"
    assert _pace(300, 2.0) == "150.0/s"
    assert _pace(0, 1.0) == "-"
