// SwitchoverCoreTests
