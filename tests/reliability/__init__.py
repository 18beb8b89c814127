"""Reliability and security harnesses: S3 fault proxy, crash harness, races, secrets, bad inputs.

``python -m tests.reliability.run`` runs the short version; ``--full`` the full one.
"""
