"""Errors raised by the sandbox runtime: the only failures a caller of any sandbox provider needs to catch.

A provider translates its backend's own exceptions (the Docker SDK's, an HTTP client's) into these, so code
outside ``agentevo/sandbox/`` never names a backend.
"""


class SandboxError(RuntimeError):
    """Base class for sandbox failures."""


class SandboxUnavailable(SandboxError):
    """The provider could not start, reach or remove a sandbox: its engine is down, gone or refused the request."""


class DockerUnavailable(SandboxUnavailable):
    """No Docker engine answers."""


class ImageMissing(SandboxError):
    """The sandbox image has not been built."""


class SandboxDied(SandboxError):
    """The sandbox is gone: its supervisor exited, was killed, or hung and was removed."""


class SandboxOperationError(SandboxError):
    """An operation inside a live sandbox failed (missing file, bad path, ...); the sandbox is still usable."""

    def __init__(self, message: str, kind: str = "Error") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class ImageBuildError(SandboxError):
    """A sandbox image could not be built or checked; the message says what to do about it."""
