// SwitchoverCLITests
