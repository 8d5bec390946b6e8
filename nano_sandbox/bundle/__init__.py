"""Example bundles: build their root filesystems from Debian's busybox-static."""
