"""The lifecycle state machine: ``statecharts/lifecycle.toml`` decoded into typed Structs, built
into a ``transitions`` Machine, every action name bound to a kernel action. The only place a
container's status changes."""
