// SwitchoverRuntime: see README.md's architecture section.
