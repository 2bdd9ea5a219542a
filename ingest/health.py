"""Health of KIPRIS harvesting: the circuit and the monthly budget (both read from Redis)."""

from __future__ import annotations

from django.conf import settings

from core import health


@health.register("kipris")
def kipris_check() -> health.CheckResult:
    """Failing while the circuit is open (KIPRIS keeps failing); a used-up budget is a planned pause, shown only."""
    from .kipris.guards import CircuitBreaker, MonthlyBudget, budget_month

    budget = MonthlyBudget(settings.KIPRIS_MONTHLY_BUDGET)
    used = budget.used()
    circuit_open = CircuitBreaker(settings.KIPRIS_CIRCUIT_FAILURES, settings.KIPRIS_CIRCUIT_OPEN_SECONDS).is_open()
    limit = budget.budget or "unlimited"
    detail = f"circuit {'open' if circuit_open else 'closed'}; {used}/{limit} calls in {budget_month()}"
    if budget.budget and used >= budget.budget:
        detail += " (budget used up: harvesting paused until next month)"
    return health.CheckResult(ok=not circuit_open, detail=detail)
