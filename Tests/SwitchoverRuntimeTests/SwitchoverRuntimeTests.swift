// SwitchoverRuntimeTests
