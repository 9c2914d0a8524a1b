// SwitchoverTestKit: see README.md's architecture section.
