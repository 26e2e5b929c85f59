"""txami benchmark harness: a fake AMI server and clients, each in its own process.

Run ``python -m bench`` from the repository root; see ``bench/README.rst``.
"""
