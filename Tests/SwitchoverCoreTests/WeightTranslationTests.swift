import Foundation
import SwitchoverCore
import SwitchoverDrivers
import Testing

/// Weight translation checked against brute force: the effective share must be the best any
/// valid integer weights could give, and the weights must be ones a load balancer can take.
@Suite struct WeightTranslationTests {
    static let percents: [Double] = Array(0...100).map(Double.init) + [0.5, 0.1, 33.3, 66.7, 99.5, 99.9]

    func servers(_ prefix: String, _ n: Int) -> [String] { (1...n).map { "\(prefix)-\($0)" } }

    /// Whether totals `a` (FROM) and `b` (TO) are realisable with every serving server at >= 1.
    func feasible(_ a: Int, _ b: Int, nFrom: Int, nTo: Int) -> Bool {
        a + b > 0 && (a == 0 || a >= nFrom) && (b == 0 || b >= nTo)
    }

    /// The smallest |share - p| over every pair of totals, by exhaustive search.
    func bestError(_ p: Double, nFrom: Int, nTo: Int, maxWeight: Int) -> Double {
        var best = Double.infinity
        for a in 0...(maxWeight * nFrom) {
            for b in 0...(maxWeight * nTo) where feasible(a, b, nFrom: nFrom, nTo: nTo) {
                best = min(best, abs(Double(b) / Double(a + b) - p))
            }
        }
        return best
    }

    func checkShape(_ w: WeightAssignment, maxWeight: Int) {
        for side in [w.from, w.to] {
            let weights = side.map(\.weight)
            #expect(weights.allSatisfy { (0...maxWeight).contains($0) })
            // Weights within a cluster differ by at most one.
            #expect(weights.max()! - weights.min()! <= 1, "\(side)")
            // A cluster that serves at all has every server serving.
            if weights.contains(where: { $0 > 0 }) { #expect(weights.allSatisfy { $0 >= 1 }, "\(side)") }
        }
    }

    @Test("maxWeight 16: every step 0–100 and 1–4 servers a side is as accurate as exhaustive search",
          arguments: 1...4, 1...4)
    func exhaustiveSmallWeights(nFrom: Int, nTo: Int) {
        let translation = WeightTranslation(maxWeight: 16)
        for percent in Self.percents {
            let w = translation.weights(percentToTarget: percent, from: servers("blue", nFrom), to: servers("green", nTo))
            checkShape(w, maxWeight: 16)
            let p = percent / 100
            let error = abs(w.effectivePercentToTarget / 100 - p)
            let best = bestError(p, nFrom: nFrom, nTo: nTo, maxWeight: 16)
            #expect(error <= best + 1e-12, "\(percent)% with \(nFrom)/\(nTo) servers: error \(error), best \(best), got \(w)")
        }
    }

    @Test("HAProxy (256): every step 0–100 and 1–4 servers a side is the best over all TO totals",
          arguments: 1...4, 1...4)
    func haproxyAgainstSearchOverToTotals(nFrom: Int, nTo: Int) {
        for percent in Self.percents {
            let w = WeightTranslation.haproxy.weights(percentToTarget: percent, from: servers("blue", nFrom), to: servers("green", nTo))
            checkShape(w, maxWeight: 256)
            let p = percent / 100
            // Independent route to the optimum: for every TO total, the best FROM total.
            var best = Double.infinity
            for b in 0...(256 * nTo) {
                let ideal = p == 0 ? Double(256 * nFrom) : Double(b) * (1 - p) / p
                for a in Set([Int(ideal.rounded(.down)), Int(ideal.rounded(.up)), 0, 256 * nFrom]) where a >= 0 && a <= 256 * nFrom {
                    if feasible(a, b, nFrom: nFrom, nTo: nTo) { best = min(best, abs(Double(b) / Double(a + b) - p)) }
                }
            }
            let error = abs(w.effectivePercentToTarget / 100 - p)
            #expect(error <= best + 1e-12, "\(percent)% with \(nFrom)/\(nTo): error \(error), best \(best)")
        }
    }

    @Test("HAProxy spot checks against exhaustive search over every pair", arguments: [1.0, 5, 33.3, 50, 99.5])
    func haproxyExhaustiveSpotCheck(percent: Double) {
        for (nFrom, nTo) in [(1, 1), (2, 2), (2, 1)] {
            let w = WeightTranslation.haproxy.weights(percentToTarget: percent, from: servers("b", nFrom), to: servers("g", nTo))
            let error = abs(w.effectivePercentToTarget / 100 - percent / 100)
            #expect(error <= bestError(percent / 100, nFrom: nFrom, nTo: nTo, maxWeight: 256) + 1e-12)
        }
    }

    @Test("a search done once is remembered by share and cluster sizes: other servers of the same counts get the same weights, under their own names")
    func rememberedSearchKeepsEachCallsServers() {
        let translation = WeightTranslation(maxWeight: 256)
        let first = translation.weights(percentToTarget: 37, from: servers("blue", 3), to: servers("green", 2))
        let second = translation.weights(percentToTarget: 37, from: servers("east", 3), to: servers("west", 2))
        #expect(first.from.map(\.weight) == second.from.map(\.weight) && first.to.map(\.weight) == second.to.map(\.weight))
        #expect(second.from.map(\.server) == servers("east", 3) && second.to.map(\.server) == servers("west", 2))
        // Another maximum weight is another search, not the remembered one.
        let small = WeightTranslation(maxWeight: 16).weights(percentToTarget: 37, from: servers("blue", 3), to: servers("green", 2))
        #expect(small.all.allSatisfy { $0.weight <= 16 })
        #expect(first.all.contains { $0.weight > 16 })
    }

    @Test("0% and 100% send nothing to the other side", arguments: 1...4, 1...4)
    func endsAreClean(nFrom: Int, nTo: Int) {
        let from = servers("blue", nFrom), to = servers("green", nTo)
        let zero = WeightTranslation.haproxy.weights(percentToTarget: 0, from: from, to: to)
        #expect(zero.toTotal == 0 && zero.from.allSatisfy { $0.weight >= 1 })
        #expect(zero.effectivePercentToTarget == 0)
        let all = WeightTranslation.haproxy.weights(percentToTarget: 100, from: from, to: to)
        #expect(all.fromTotal == 0 && all.to.allSatisfy { $0.weight >= 1 })
        #expect(all.effectivePercentToTarget == 100)
    }

    @Test func onePercentWithTwoServersEachIsWithinATenthOfOne() {
        let w = WeightTranslation.haproxy.weights(percentToTarget: 1, from: ["blue-1", "blue-2"], to: ["green-1", "green-2"])
        #expect(abs(w.effectivePercentToTarget - 1) <= 0.1, "\(w)")
        #expect(w.all.map(\.server) == ["blue-1", "blue-2", "green-1", "green-2"])
    }

    /// The smallest share is the least positive share any valid weights give (exhaustive), and a
    /// step has no share exactly when the translation gives TO a total of 0.
    @Test(arguments: [(1, 1), (2, 2), (3, 1), (1, 3), (4, 2)])
    func smallestShareAndStepsWithNoShare(_ nFrom: Int, _ nTo: Int) {
        let translation = WeightTranslation(maxWeight: 7)
        let from = servers("blue", nFrom), to = servers("green", nTo)
        var least = Double.infinity
        for a in 0...(7 * nFrom) {
            for b in 1...(7 * nTo) where feasible(a, b, nFrom: nFrom, nTo: nTo) {
                least = min(least, Double(b) / Double(a + b))
            }
        }
        let smallest = translation.smallestShare(from: from, to: to)
        #expect(abs(smallest.effectivePercentToTarget - 100 * least) < 1e-9)
        checkShape(smallest, maxWeight: 7)
        let steps = stride(from: 0.0, through: 100, by: 0.05).map { $0 }
        let expected = steps.indices.filter { steps[$0] > 0 && translation.weights(percentToTarget: steps[$0], from: from, to: to).toTotal == 0 }
        #expect(translation.stepsWithNoShare(steps, from: from, to: to).map(\.index) == expected)
        #expect(!expected.isEmpty)
    }
}
