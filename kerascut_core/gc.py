"""Temporary: garbage collection moved to :mod:`kerascut_core.publishing.garbage`."""

from kerascut_core.publishing.garbage import *  # noqa: F403  # temporary re-export, removed once the attack tests import kerascut_core.publishing
