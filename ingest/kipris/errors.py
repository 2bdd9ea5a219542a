"""Typed KIPRIS errors: what a retry may fix, what stops the harvest, what is a bug in the request.

`error_type` is the label of `kipris_errors_total`; `result_code` is KIPRIS's own code when it sent one.
"""

from __future__ import annotations


class KiprisError(Exception):
    error_type = "error"

    def __init__(self, message: str, *, result_code: str = "") -> None:
        super().__init__(message)
        self.result_code = result_code


class TransientError(KiprisError):
    """5xx, timeouts, connection errors, non-XML or truncated bodies: retry with backoff."""

    error_type = "transient"


class PermanentError(KiprisError):
    """The same request will fail again: bad parameter (10), key/product not registered (30, 31, 101)."""

    error_type = "permanent"


class BlockedError(PermanentError):
    """`resultCode 10` with "Blocked users.": the key was blocked (usually after too many requests)."""

    error_type = "blocked"


class QuotaExceededError(KiprisError):
    """`resultCode 22`: KIPRIS's own call quota is used up; nothing works until it resets (monthly)."""

    error_type = "quota"


class BudgetExhaustedError(KiprisError):
    """Our own monthly call budget would be exceeded by one more call: stop before KIPRIS does."""

    error_type = "budget"


class CircuitOpenError(KiprisError):
    """KIPRIS kept failing; calls are paused until the circuit's cool-down ends."""

    error_type = "circuit_open"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PoisonedResponseError(PermanentError):
    """The body declares entities or a DTD (an entity bomb or external entity): refused unparsed."""

    error_type = "poisoned"


class TooManyResultsError(PermanentError):
    """totalCount is implausibly large for one applicant number: a parameter was ignored upstream."""

    error_type = "too_many_results"
