"""Thin, typed wrappers over Linux system calls (ctypes over libc) and kernel tables.

Each wrapper raises :class:`OSError` with the errno and the path or argument involved, so callers
can add the step ("mount proc on /proc") and show one clear line. Nothing here decides policy.
"""
