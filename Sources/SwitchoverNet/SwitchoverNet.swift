// SwitchoverNet: see README.md's architecture section.
