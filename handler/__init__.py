"""The TorchServe side of the bundle.

``handler.handler`` and ``handler.streaming`` are the adapter (packed into every .mar as this
package, entered through ``handler/entry.py``); ``handler.archive`` builds archives and
``handler.server`` starts, waits for and stops TorchServe instances (the Makefile, tests, bench and
tools all use these two).
"""
