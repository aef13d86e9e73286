"""The operator console: web pages for the people who run the service.

Pages under ``/console`` for failed jobs, webhook events, email suppressions, subscriptions
and AI spend, with the actions operators need.

Needs the ``console`` extra: ``pip install 'omnistack-core[console]'``. Install
:class:`ConsoleModule` with the modules it shows; open it with a link from
``omnistack console-link`` or, with the auth module, as a user holding ``CONSOLE_ROLE``.
"""

import importlib.util

from omnistack_core.errors import MissingDependencyError

if importlib.util.find_spec("jinja2") is None:
    raise MissingDependencyError("console", "console")

from omnistack_core.console.access import Operator, mint_link
from omnistack_core.console.audit import mask_text, mask_value
from omnistack_core.console.module import SECTIONS, ConsoleModule
from omnistack_core.console.settings import ConsoleSettings

__all__ = [
    "SECTIONS",
    "ConsoleModule",
    "ConsoleSettings",
    "Operator",
    "mask_text",
    "mask_value",
    "mint_link",
]
