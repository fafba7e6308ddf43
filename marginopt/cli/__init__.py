"""The ``marginopt`` command."""
