// SwitchoverSignals: see README.md's architecture section.
