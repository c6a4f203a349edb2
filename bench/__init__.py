"""Benchmarks of zerotouch against its own bar and against Event-Driven Ansible (issue #5).

`python -m bench [--quick] [--out BENCHMARKS.md]` starts every server it needs on free
loopback ports, runs the scenarios and writes a Markdown report whose every number comes
from that run.
"""
