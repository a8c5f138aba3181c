"""Quotas over REST (the service and the rules: :mod:`workbench.quotas`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: the quotas, in the order they are shown
NAMES = ("replicas", "memory_mb", "upload_bytes")


class QuotaValues(BaseModel):
    replicas: int
    memory_mb: int
    upload_bytes: int


class QuotaInfo(BaseModel):
    """A user's quotas, which of them an admin set (the others are the server's default),
    and what the user has in use now."""

    username: str
    limits: QuotaValues
    custom: list[str]
    used: QuotaValues


class QuotaUpdate(BaseModel):
    """An admin's change: each field given is set (null: back to the server's default);
    fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    replicas: int | None = Field(None, ge=0)
    memory_mb: int | None = Field(None, ge=0)
    upload_bytes: int | None = Field(None, ge=0)
