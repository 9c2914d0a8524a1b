import Foundation

/// Where the built `switchover` executable is: `SWITCHOVER_BINARY` when set, else next to the
/// running test bundle (SwiftPM puts every product of a build in one folder), else
/// `.build/debug/switchover` of this checkout.
public func switchoverExecutable(filePath: String = #filePath) throws -> URL {
    var candidates: [URL] = []
    if let explicit = ProcessInfo.processInfo.environment["SWITCHOVER_BINARY"] {
        candidates.append(URL(fileURLWithPath: explicit))
    }
    if let executable = Bundle.main.executableURL {
        candidates.append(executable.deletingLastPathComponent().appendingPathComponent("switchover"))
    }
    candidates.append(Bundle.main.bundleURL.appendingPathComponent("switchover"))
    candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("switchover"))
    let checkout = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    candidates.append(checkout.appendingPathComponent(".build/debug/switchover"))
    for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
        return candidate
    }
    throw TestKitError("the switchover executable was not found (looked at \(candidates.map(\.path).joined(separator: ", "))): run `swift build --build-tests` first")
}

/// Runs the built `switchover` with `args` in `cwd` and returns its exit code and output.
/// Output goes through files, not pipes, so a chatty command cannot block on a full pipe. The
/// wait for its exit blocks, so it happens on a thread of its own (`OwnThread`): a command may
/// take seconds (`pause` waits 5 s for an answer, `run` a whole cutover).
/// `extraEnvironment` is added to this process's environment for the child.
public func runSwitchover(_ args: [String], cwd: URL?,
                          extraEnvironment: [String: String] = [:]) async throws -> (exitCode: Int32, stdout: String, stderr: String) {
    let executable = try switchoverExecutable()
    let result = try await OwnThread.run("switchover \(args.first ?? "")") {
        try runToEnd(executable, args, cwd: cwd, extraEnvironment: extraEnvironment)
    }
    return (result.exitCode, result.stdout, result.stderr)
}

private struct Finished: Sendable {
    var exitCode: Int32
    var stdout: String
    var stderr: String
}

private func runToEnd(_ executable: URL, _ args: [String], cwd: URL?, extraEnvironment: [String: String]) throws -> Finished {
    let folder = try TemporaryDirectory.make("cli-out")
    defer { try? FileManager.default.removeItem(at: folder) }
    let outURL = folder.appendingPathComponent("stdout")
    let errURL = folder.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    let process = Process()
    process.executableURL = executable
    process.arguments = args
    if let cwd { process.currentDirectoryURL = cwd }
    if !extraEnvironment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(extraEnvironment) { _, new in new }
    }
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try? out.close()
    try? err.close()
    let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
    let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return Finished(exitCode: process.terminationStatus, stdout: stdout, stderr: stderr)
}
