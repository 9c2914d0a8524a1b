// SwitchoverDriversTests
