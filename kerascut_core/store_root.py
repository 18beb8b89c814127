"""Temporary: the store root marker moved to :mod:`kerascut_core.publishing.root`."""

from kerascut_core.publishing.root import *  # noqa: F403  # temporary re-export, removed once the attack tests import kerascut_core.publishing
