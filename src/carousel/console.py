"""What every command line shares: the project's own errors as one line, and the options' checked types.

Each entry point (`carousel`, `carousel-validate`, `carousel-train`) parses its arguments with
the types below, so an option out of its range is an argparse usage error (exit 2) naming the
option and the range before any Spark starts, then runs its body through `run_command`:

- an error of the project (`carousel.errors.CarouselError`) prints `<prog>: error: <message>`
  as one line on stderr and exits 1; with `--verbose` the traceback comes first;
- Ctrl-C prints `<prog>: interrupted` and exits 130, the shell's code for SIGINT;
- any other exception keeps its traceback: it is a bug to report.

No Spark here: the module is imported before any session starts.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

from carousel.config import KnobRange, parse_day, parse_knob
from carousel.errors import CarouselError, KnobRangeError

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
JAVA_INT_MAX = 2**31 - 1  # the options below end up in Spark (JVM int) settings and columns

log = logging.getLogger("carousel")

T = TypeVar("T")


def add_verbose_option(parser: argparse.ArgumentParser, default: object = False) -> None:
    """Add `-v/--verbose`: a failure also prints its traceback, and the carousel logger logs at DEBUG."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default,
        help="on an error, print the traceback too; log at DEBUG",
    )


def configure_logging(verbose: bool) -> None:
    """Log INFO and above to stderr with timestamps; the carousel logger logs DEBUG too when `verbose`.

    Py4J's INFO lines are left out: "Closing down clientserver connection" at exit would come
    after the error line.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    if verbose:
        log.setLevel(logging.DEBUG)


def error_line(error: BaseException) -> str:
    """The error's message as one line.

    An error with a `headline` attribute (e.g. a failed `spark-pipelines` run, whose message goes
    on with the tail of its output) shows that; any other multi-line message is joined: the lines
    after one that ends with ':' follow it, the others are separated by '; ', list bullets dropped.
    """
    headline = getattr(error, "headline", None)
    if isinstance(headline, str) and headline.strip():
        return " ".join(headline.split())
    lines = [line.strip().removeprefix("- ").strip() for line in str(error).splitlines()]
    joined = ""
    for line in filter(None, lines):
        if joined:
            joined += " " if joined.endswith(":") else "; "
        joined += line
    return joined or type(error).__name__


def run_command(prog: str, body: Callable[[], T], verbose: bool = False) -> T:
    """Run an entry point's body; return what it returns.

    Raises:
        SystemExit: 1 with the message `<prog>: error: <message>` (which Python prints to stderr as one
            line) on a `CarouselError`; 130 after printing `<prog>: interrupted` on Ctrl-C.
    """
    try:
        return body()
    except CarouselError as error:
        if verbose:
            traceback.print_exc(file=sys.stderr)
        line = error_line(error)
        if not verbose and getattr(error, "headline", None) and str(error).strip() != line:
            line += " (--verbose shows the details)"
        # SystemExit with a message: Python prints it to stderr and exits 1.
        raise SystemExit(f"{prog}: error: {line}") from None
    except KeyboardInterrupt:
        if verbose:
            traceback.print_exc(file=sys.stderr)
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None


# --- option types: a usage error (exit 2) that names the option and its allowed range ----------


def _usage_error(error: KnobRangeError | ValueError) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(str(error))


def knob(name: str) -> Callable[[str], int]:
    """The argparse type of the knob `name` of `carousel.config.KNOBS`: a whole number within its range."""

    def parse(text: str) -> int:
        try:
            return parse_knob(name, text)
        except KnobRangeError as error:
            raise _usage_error(error) from None

    parse.__name__ = name
    return parse


def whole_number(name: str, low: int = 1, high: int = JAVA_INT_MAX) -> Callable[[str], int]:
    """The argparse type of a whole-number option that is no knob: from `low` to `high`, inclusive."""
    allowed = KnobRange(low, high)

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise _usage_error(KnobRangeError(name, text, allowed.describe()))
        return value

    parse.__name__ = name
    return parse


def number(name: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    """The argparse type of a real-number option within [`low`, `high`] (an open end excludes its bound)."""
    if math.isinf(high):
        allowed = f"a finite number {'above' if low_open else 'of at least'} {low:g}"
    else:
        allowed = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above_low = value > low if low_open else value >= low
        below_high = value < high if high_open else value <= high
        if not (math.isfinite(value) and above_low and below_high):
            raise _usage_error(KnobRangeError(name, text, allowed))
        return value

    parse.__name__ = name
    return parse


def day(name: str) -> Callable[[str], str]:
    """The argparse type of a day option: a valid 'yyyy-MM-dd' day, returned in that form."""

    def parse(text: str) -> str:
        try:
            return parse_day(text, name).isoformat()
        except ValueError as error:
            raise _usage_error(error) from None

    parse.__name__ = name
    return parse


def optional_day(name: str) -> Callable[[str], str | None]:
    """Like `day`, but an empty text means no day (None): what an unset bundle variable passes."""
    parse_given = day(name)

    def parse(text: str) -> str | None:
        return parse_given(text) if text.strip() else None

    parse.__name__ = name
    return parse


def add_table_location_options(parser: argparse.ArgumentParser) -> None:
    """`--catalog` and `--schema`: where a job task finds the pipeline's tables (`parse_table_location_args`)."""
    parser.add_argument("--catalog", default="", help="the pipeline's catalog (empty: the current one)")
    parser.add_argument("--schema", default="", help="the pipeline's schema (empty: the current one)")


def parse_table_location_args(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """Parse `argv`; a `--catalog` without `--schema` is a usage error (exit 2): tables are catalog.schema.table."""
    args = parser.parse_args(argv)
    if args.catalog and not args.schema:
        parser.error(f"--catalog {args.catalog} needs --schema: the tables are named catalog.schema.table")
    return args
