"""Policy decisions and how the processor combines them (the Collector's
``makeDecision``): any Dropped or InvertNotSampled -> not sampled; else any
Sampled -> sampled; else InvertSampled without a NotSampled -> sampled;
else not sampled.  Inverted decisions come from ``invert_match`` and are
deprecated upstream (use ``drop``); inside ``and``/``composite`` they count
as plain decisions."""
from __future__ import annotations

class Decision:
    """Decision names (plain strings: they are hashed per trace and
    policy, and str hashing is much cheaper than Enum's)."""
    UNSPECIFIED = "unspecified"
    PENDING = "pending"
    SAMPLED = "sampled"
    NOT_SAMPLED = "not_sampled"
    INVERT_SAMPLED = "invert_sampled"
    INVERT_NOT_SAMPLED = "invert_not_sampled"
    DROPPED = "dropped"
    ERROR = "error"


def combine(seen: set) -> bool:
    if Decision.DROPPED in seen or Decision.INVERT_NOT_SAMPLED in seen:
        return False
    if Decision.SAMPLED in seen:
        return True
    if Decision.INVERT_SAMPLED in seen and Decision.NOT_SAMPLED not in seen:
        return True
    return False


def is_sampled(d: Decision) -> bool:
    return d in (Decision.SAMPLED, Decision.INVERT_SAMPLED)
