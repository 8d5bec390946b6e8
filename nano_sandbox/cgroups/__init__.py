"""Control groups: layout detection (v1, v2, hybrid) and the drivers that create, limit, freeze
and remove a container's cgroups. runtime-spec config-linux.md "Control groups"."""
