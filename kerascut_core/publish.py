"""Temporary: the publishing API moved to :mod:`kerascut_core.publishing`."""

from kerascut_core.publishing import *  # noqa: F403  # temporary re-export, removed once the attack tests import kerascut_core.publishing
