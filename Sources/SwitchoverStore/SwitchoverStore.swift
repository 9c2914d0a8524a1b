// SwitchoverStore: see README.md's architecture section.
