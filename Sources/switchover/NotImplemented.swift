import ArgumentParser
import Foundation

// Commands whose issues have not landed yet. Each says so and exits non-zero, so no script can
// mistake one for a success. Replace a stub with its real file when its issue lands.

private func notImplemented(_ name: String) throws -> Never {
    FileHandle.standardError.write(Data("switchover \(name): not implemented yet\n".utf8))
    throw Exit.inputError
}
