"""The console module's settings."""

from __future__ import annotations

from pydantic import Field

from omnistack_core.module_settings import ModuleSettings


class ConsoleSettings(ModuleSettings):
    """Settings of :class:`~omnistack_core.console.ConsoleModule`.

    Links and sessions are signed with the core's ``SECRET_KEY``, and pages show its
    ``SERVICE_NAME``: the console reads those from the service's settings rather than
    declaring them again.

    Validator names start with ``_console_``: a service composes every module's settings
    class into one, where validators must not share names.
    """

    module = "console"

    console_enabled: bool | None = None
    """Serve the console under ``/console``; by default on everywhere but production, where
    it is off unless this is ``true``."""
    console_role: str = Field(default="admin", min_length=1)
    """The role a signed-in user (auth module) needs to open the console."""
    console_permission: str | None = None
    """When set, the permission a signed-in user needs instead of ``CONSOLE_ROLE``."""
    console_session_minutes: int = Field(default=480, ge=1, le=7 * 24 * 60)
    """How long a console session cookie lasts after a link is used."""
    console_link_minutes: int = Field(default=10, ge=1, le=24 * 60)
    """How long a link ``omnistack console-link`` prints stays usable (once)."""
    console_sample_seconds: float = Field(default=60.0, ge=0)
    """How often readiness is sampled for the overview's recent history (0: only when the
    overview is opened)."""
    console_page_size: int = Field(default=50, ge=5, le=500)
    """Rows per page of every list."""

    @property
    def console_on(self) -> bool:
        """Whether the console is served: ``CONSOLE_ENABLED``, else outside production."""
        if self.console_enabled is None:
            return self.environment != "production"
        return self.console_enabled
