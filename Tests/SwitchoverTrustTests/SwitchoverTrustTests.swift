// SwitchoverTrustTests
