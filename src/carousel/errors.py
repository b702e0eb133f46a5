"""The one base class of the project's own errors, so each entry point catches them once."""

from __future__ import annotations


class CarouselError(Exception):
    """An error the project raises on purpose, with a message a user can act on.

    Every named error of the project derives from it (often together with the built-in class
    it refines, such as `ValueError`), so a command line turns any of them into one line.
    """


class KnobRangeError(CarouselError, ValueError):
    """A configuration knob is outside its allowed range (the message names the knob and the range)."""

    def __init__(self, knob: str, value: object, allowed: str) -> None:
        super().__init__(f"{knob} must be {allowed}, got {value!r}")
        self.knob = knob
        self.value = value
        self.allowed = allowed


class ConfigError(CarouselError, ValueError):
    """A configuration's values are out of range or do not fit together (the message names the setting)."""
