// SwitchoverSignalsTests
