"""Temporary: the manifest model moved to :mod:`kerascut_core.publishing.manifest`."""

from kerascut_core.publishing.manifest import *  # noqa: F403  # temporary re-export, removed once the attack tests import kerascut_core.publishing
