"""Reports built on trained runs and tasks: floors, result tables, equivariance and symmetry analyses.

The top of the library (only the command line sits above it): each module with a ``main(argv)`` is a
``zoo report NAME`` sub-command (``common`` holds what they share) and can also be called from Python.
"""
