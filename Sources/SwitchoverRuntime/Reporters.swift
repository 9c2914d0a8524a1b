import SwitchoverCore

/// Several reporters as one: the coordinator has one `reporter`, and the runtime hands it the
/// person's (terminal or log) together with what else listens (the `/metrics` series, ...).
/// Each gets every call, in the order given. A progress snapshot is built at most once per call,
/// and only when some reporter asks for it (a `LogReporter` never does).
public struct Reporters: Reporter {
    public let reporters: [any Reporter]

    public init(_ reporters: [any Reporter]) {
        self.reporters = reporters
    }

    public func event(_ event: EngineEvent, at: Instant) {
        for reporter in reporters { reporter.event(event, at: at) }
    }

    public func notify(_ message: String) {
        for reporter in reporters { reporter.notify(message) }
    }

    public func note(kind: String, _ message: String) {
        for reporter in reporters { reporter.note(kind: kind, message) }
    }

    public func progress(_ progress: @autoclosure () -> ProgressSnapshot) {
        var built: ProgressSnapshot?
        for reporter in reporters {
            reporter.progress({
                if let built { return built }
                let snapshot = progress()
                built = snapshot
                return snapshot
            }())
        }
    }

    public func finish(_ line: String?) {
        for reporter in reporters { reporter.finish(line) }
    }
}
