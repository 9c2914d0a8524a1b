// SwitchoverTrust: see README.md's architecture section.
