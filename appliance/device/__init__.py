"""The appliance as a device: systemd notify and watchdog, journald logging, self-test, provisioning."""
