// SwitchoverDrivers: see README.md's architecture section.
