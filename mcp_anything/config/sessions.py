"""`server.sessions`: how handshake-era (2025-11-25) sessions are sealed, ended and shared out fairly."""

from __future__ import annotations

from typing import Final

from pydantic import Field, SecretStr, field_validator, model_validator

from mcp_anything.config.types import PositiveDuration, Rate, SharedStore, StrictModel

MIN_SESSION_KEY_BYTES: Final = 32  # bytes of UTF-8: a passphrase shorter than this is guessable offline


def _long_enough(secret: SecretStr) -> SecretStr:
    length = len(secret.get_secret_value().encode())
    if length < MIN_SESSION_KEY_BYTES:
        # The value itself is a secret: only its length is named.
        raise ValueError(
            f"a session key must be at least {MIN_SESSION_KEY_BYTES} bytes, got {length}"
            " (generate one with `openssl rand -base64 48`)"
        )
    return secret


class SessionsConfig(StrictModel):
    # Seals session ids. Every replica and worker serving the same clients needs the same key;
    # None: a random key per process, so a session is served only by the process that opened it.
    key: SecretStr | None = None
    previous_keys: list[SecretStr] = []  # still accepted, never used for new sessions: key rotation
    ttl: PositiveDuration = 86400.0  # a session's whole life, from initialize
    # Where ended (DELETEd or evicted) sessions are remembered until they would have expired:
    # `memory` (this process) or redis://... (every replica); may hold a password, so a secret.
    revocations: SharedStore = SecretStr("memory")
    # Sessions, and open streams, per caller on this process; at the cap the caller's own oldest one ends.
    max_per_principal: int = Field(default=100, ge=1)
    initialize_rate: Rate | None = "60/minute"  # `initialize` per caller; None: unlimited
    max_streams_per_session: int = Field(default=1, ge=1)  # GET event streams; a new one ends the oldest
    max_streams: int = Field(default=1000, ge=1)  # event and listen streams open on this process

    @field_validator("key")
    @classmethod
    def _key_length(cls, key: SecretStr | None) -> SecretStr | None:
        return None if key is None else _long_enough(key)

    @field_validator("previous_keys")
    @classmethod
    def _previous_lengths(cls, keys: list[SecretStr]) -> list[SecretStr]:
        return [_long_enough(key) for key in keys]

    @model_validator(mode="after")
    def _rotation_needs_a_key(self) -> SessionsConfig:
        if self.previous_keys and self.key is None:
            raise ValueError("previous_keys needs `key`: the key new sessions are sealed with")
        return self
