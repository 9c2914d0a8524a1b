import Synchronization

/// Turns "p percent of traffic to TO" into the integer weights a load balancer takes.
///
/// HAProxy weights are integers 0–256 per server and a cluster has several servers, so most
/// percentages cannot be hit exactly: 1% with one server a side is 1 against 99 (exact), with
/// three servers to TO and two to FROM it is 3 against 297 (needs 148.5 per FROM server). This
/// searches every FROM total against the nearest valid TO totals (the two around the ideal, TO's
/// smallest serving total, and all-to-TO), so the effective share is the best achievable for the
/// servers at hand (the tests check it against exhaustive search); `plan` shows it and every driver applies it, from this one
/// piece of code.
public struct WeightTranslation: Sendable, Hashable {
    /// The weight a single entry may take: 256 for HAProxy servers. Each driver declares its
    /// own (`DriverDescription.translation`).
    public var maxWeight: Int

    public init(maxWeight: Int) {
        precondition(maxWeight >= 1, "maxWeight must be at least 1")
        self.maxWeight = maxWeight
    }

    /// The weights of every server of FROM and TO for `percentToTarget` (0–100) of traffic to TO.
    ///
    /// Ties between equally accurate choices go first to totals that split evenly across a
    /// cluster's servers (so no server of a cluster carries more than its peers), then to larger
    /// totals (more headroom for the next step, and the full weight at 0% and 100%).
    public func weights(percentToTarget: Double, from fromServers: [String], to toServers: [String]) -> WeightAssignment {
        precondition(!fromServers.isEmpty && !toServers.isEmpty, "both clusters need at least one server")
        let p = min(max(percentToTarget, 0), 100) / 100
        let chosen = Self.totals.memoized(Totals.Key(p: p, nFrom: fromServers.count, nTo: toServers.count, maxWeight: maxWeight)) {
            totals(p: p, nFrom: fromServers.count, nTo: toServers.count)
        }
        return WeightAssignment(
            from: Self.spread(chosen.from, over: fromServers),
            to: Self.spread(chosen.to, over: toServers))
    }

    /// The searches already done, by share and cluster sizes: the search walks every FROM total
    /// (128,000 of them for 500 servers a side, 1.7 ms), and a run asks for the same few steps
    /// again and again (every instance, every read-back, `plan`, `status`).
    static let totals = Totals()

    final class Totals: Sendable {
        struct Key: Hashable { var p: Double, nFrom: Int, nTo: Int, maxWeight: Int }
        private let memo = Mutex<[Key: (from: Int, to: Int)]>([:])

        func memoized(_ key: Key, _ search: () -> (from: Int, to: Int)) -> (from: Int, to: Int) {
            if let known = memo.withLock({ $0[key] }) { return known }
            let found = search()
            memo.withLock { memo in
                if memo.count >= 4_096 { memo.removeAll() }  // bounded; a run uses a few dozen
                memo[key] = found
            }
            return found
        }
    }

    /// FROM's and TO's total weight for share `p` (0–1): the search `weights` describes.
    private func totals(p: Double, nFrom: Int, nTo: Int) -> (from: Int, to: Int) {
        let maxFrom = maxWeight * nFrom
        let maxTo = maxWeight * nTo

        var best: (from: Int, to: Int, error: Double, even: Bool)?
        func consider(_ a: Int, _ b: Int) {
            guard a + b > 0 else { return }
            // Every server of a cluster that gets traffic must get weight >= 1, or some of its
            // servers would silently take none.
            if a > 0 && a < nFrom { return }
            if b > 0 && b < nTo { return }
            let error = abs(Double(b) / Double(a + b) - p)
            let even = a % nFrom == 0 && b % nTo == 0
            guard let current = best else {
                best = (a, b, error, even)
                return
            }
            let epsilon = 1e-12
            if error < current.error - epsilon {
                best = (a, b, error, even)
            } else if abs(error - current.error) <= epsilon {
                if even && !current.even {
                    best = (a, b, error, even)
                } else if even == current.even && a + b > current.from + current.to {
                    best = (a, b, error, even)
                }
            }
        }

        // All to TO: exact at 100%, and the closest there is to a step just below 100% when
        // FROM's smallest serving total (one per server) would still take too much.
        consider(0, maxTo)
        if p < 1 {
            for a in 0...maxFrom {
                let ideal = p * Double(a) / (1 - p)
                let lower = min(Int(ideal.rounded(.down)), maxTo)
                consider(a, lower)
                if lower + 1 <= maxTo { consider(a, lower + 1) }
                // The two nearest TO totals may both be below one per TO server (not
                // allowed); TO's smallest serving total is then the nearest valid one.
                if lower + 1 < nTo { consider(a, nTo) }
            }
        }
        return (best!.from, best!.to)
    }

    /// The least traffic TO can get without getting none: every TO server at weight 1, every
    /// FROM server at `maxWeight` (every serving server needs at least 1, so no smaller
    /// positive share exists). A step below about half of it translates to 0% to TO.
    public func smallestShare(from fromServers: [String], to toServers: [String]) -> WeightAssignment {
        precondition(!fromServers.isEmpty && !toServers.isEmpty, "both clusters need at least one server")
        return WeightAssignment(from: Self.spread(maxWeight * fromServers.count, over: fromServers),
                                to: Self.spread(toServers.count, over: toServers))
    }

    /// Steps (percent to TO, above 0) that these servers would turn into 0% to TO, with their
    /// index: such a step sends TO nothing, so no gate on TO could ever pass it.
    public func stepsWithNoShare(_ steps: [Double], from fromServers: [String], to toServers: [String]) -> [(index: Int, percent: Double)] {
        let smallest = smallestShare(from: fromServers, to: toServers).effectivePercentToTarget
        // At or above the smallest share, that assignment is closer than 0%: only smaller steps
        // need the full search.
        return steps.enumerated().filter { _, percent in
            percent > 0 && percent < smallest
                && weights(percentToTarget: percent, from: fromServers, to: toServers).toTotal == 0
        }.map { (index: $0.offset, percent: $0.element) }
    }

    /// Splits a cluster's total across its servers, differing by at most one.
    static func spread(_ total: Int, over servers: [String]) -> [ServerWeight] {
        let base = total / servers.count
        let extra = total % servers.count
        return servers.enumerated().map { index, name in
            ServerWeight(server: name, weight: base + (index < extra ? 1 : 0))
        }
    }
}

/// One server's integer weight in the load balancer.
public struct ServerWeight: Sendable, Hashable, Codable {
    public var server: String
    public var weight: Int
    public init(server: String, weight: Int) {
        self.server = server
        self.weight = weight
    }
}

/// The weights of both clusters' servers for one step.
public struct WeightAssignment: Sendable, Hashable, Codable {
    public var from: [ServerWeight]
    public var to: [ServerWeight]

    public init(from: [ServerWeight], to: [ServerWeight]) {
        self.from = from
        self.to = to
    }

    public var fromTotal: Int { from.reduce(0) { $0 + $1.weight } }
    public var toTotal: Int { to.reduce(0) { $0 + $1.weight } }

    /// The share of traffic, in percent, that these integers really send to TO. A load balancer
    /// with every weight at zero sends nothing anywhere; that reads as 0.
    public var effectivePercentToTarget: Double {
        let total = fromTotal + toTotal
        return total == 0 ? 0 : 100 * Double(toTotal) / Double(total)
    }

    /// Every server with its weight, FROM's first.
    public var all: [ServerWeight] { from + to }
}
