"""Processes: the parent side (spawn the init, talk to it, the exec fifo), the child side (the
container init: the setup sequence ending in execve), exec's setns path, and hooks."""
