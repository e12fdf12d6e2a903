"""Errors raised by the sandbox runtime."""


class SandboxError(RuntimeError):
    """Base class for sandbox failures."""


class DockerUnavailable(SandboxError):
    """No Docker engine answers."""


class ImageMissing(SandboxError):
    """The sandbox image has not been built."""


class SandboxDied(SandboxError):
    """The sandbox stopped answering: its supervisor exited, was killed, or hung and was removed."""


class SandboxOperationError(SandboxError):
    """An operation inside a live sandbox failed (missing file, bad path, ...); the sandbox is still usable."""

    def __init__(self, message: str, kind: str = "Error") -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class ImageBuildError(SandboxError):
    """A sandbox image could not be built or checked; the message says what to do about it."""
