import Foundation
import Logging
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverTestKit
import Testing

let testLogger = Logger(label: "switchover.drivers.tests")

/// Backends of one cluster and how many requests each has seen.
struct Backends {
    var cluster: String
    var servers: [NginxBackend]
    func count() throws -> Int { try servers.reduce(0) { $0 + (try $1.requestCount()) } }
}

/// Sends `requests` through `url` and returns the percentage that reached `to`, counted at the
/// backends' access logs.
func measuredPercent(to: Backends, from: Backends, url: String, requests: Int) async throws -> (percent: Double, total: Int) {
    let toBefore = try to.count(), fromBefore = try from.count()
    let result = try await Load.hey(url, requests: requests, concurrency: 20)
    #expect(result.statusCounts[200] == requests, "every request should be answered 200: \(result.statusCounts)")
    // nginx logs a request once its response is sent; give the last lines a moment.
    var toCount = 0, fromCount = 0
    try await Wait.until(timeout: 1, every: .milliseconds(20)) {
        toCount = try to.count() - toBefore
        fromCount = try from.count() - fromBefore
        return toCount + fromCount >= requests
    }
    #expect(toCount + fromCount == requests, "backends logged \(toCount + fromCount) of \(requests) requests")
    return (100 * Double(toCount) / Double(max(toCount + fromCount, 1)), toCount + fromCount)
}
