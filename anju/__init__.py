"""The ``anju`` command line: one entry point for the hub, the edge agent, the simulators and the demo."""

__version__ = "0.1.0"
