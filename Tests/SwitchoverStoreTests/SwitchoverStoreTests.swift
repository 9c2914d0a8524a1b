// SwitchoverStoreTests
