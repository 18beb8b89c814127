"""Temporary: the consumer API moved to :mod:`kerascut_core.publishing.consumer`."""

from kerascut_core.publishing.consumer import *  # noqa: F403  # temporary re-export, removed once the attack tests import kerascut_core.publishing
