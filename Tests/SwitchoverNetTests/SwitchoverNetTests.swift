// SwitchoverNetTests
