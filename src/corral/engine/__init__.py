"""The only package that speaks to Redis: key names, Lua scripts and the Engine."""

from corral.engine.redis import Claimed, ClaimResult, Engine, JobSpec, NewJob

__all__ = ["ClaimResult", "Claimed", "Engine", "JobSpec", "NewJob"]
