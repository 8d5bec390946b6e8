"""End-to-end tests: podman and containerd driving the runtime (a package, so its conftest does not
replace the ``conftest`` module the other test directories import helpers from)."""
