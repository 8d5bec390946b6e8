"""Teaching: explain-mode narration (-E), the trace journal, and diagram export — all fed by the
same statechart and the same code path that runs the container."""
