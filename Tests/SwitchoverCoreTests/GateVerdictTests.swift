import Testing
@testable import SwitchoverCore

@Suite("Gate verdicts: load balancer windows and Prometheus results")
struct GateVerdictTests {
    let gate = LoadBalancerGate(cluster: "green", max5xxRatio: 0.01, minRequests: 50,
                                maxMeanResponseTime: .milliseconds(200))

    func snapshot(_ at: Double, responses: Int64, fivexx: Int64, rtimeTotal: Double? = nil,
                  rtimeAverage: Double? = nil) -> LoadBalancerSample {
        LoadBalancerSample(at: .seconds(at), clusters: ["green": ClusterCounters(
            responses: responses, responses2xx: responses - fivexx, responses5xx: fivexx, sessionsTotal: responses,
            responseTimeTotalMilliseconds: rtimeTotal, responseTimeAverageMilliseconds: rtimeAverage)])
    }

    @Test("the window's 5xx ratio decides between pass and fail")
    func ratio() {
        let pass = gate.judge(previous: snapshot(0, responses: 1_000, fivexx: 100),
                              current: snapshot(1, responses: 1_200, fivexx: 101, rtimeAverage: 20))
        #expect(pass.verdict == .pass)
        #expect(pass.value == 0.005) // 1 of 200 in the window, not 101 of 1200 overall
        let fail = gate.judge(previous: snapshot(0, responses: 1_000, fivexx: 0),
                              current: snapshot(1, responses: 1_200, fivexx: 3, rtimeAverage: 20))
        #expect(fail.verdict == .fail)
        #expect(fail.value == 0.015)
    }

    @Test("fewer than minRequests responses is inconclusive, never a pass")
    func tooFewRequests() {
        let outcome = gate.judge(previous: snapshot(0, responses: 1_000, fivexx: 0),
                                 current: snapshot(1, responses: 1_049, fivexx: 0, rtimeAverage: 20))
        #expect(outcome.verdict == .inconclusive)
        #expect(outcome.detail.contains("49 responses"))
    }

    @Test("a counter reset (load balancer restarted) is inconclusive, not a negative rate")
    func counterReset() {
        let outcome = gate.judge(previous: snapshot(0, responses: 10_000, fivexx: 500),
                                 current: snapshot(1, responses: 300, fivexx: 0, rtimeAverage: 20))
        #expect(outcome.verdict == .inconclusive)
        #expect(outcome.detail.contains("counters went down"))
    }

    @Test("a cluster missing from the statistics is an error")
    func missingCluster() {
        let other = LoadBalancerGate(cluster: "purple", max5xxRatio: 0.01, minRequests: 1, maxMeanResponseTime: nil)
        #expect(other.judge(previous: snapshot(0, responses: 0, fivexx: 0),
                            current: snapshot(1, responses: 100, fivexx: 0)).verdict == .error)
    }

    @Test("mean response time: exact from cumulative totals, else the load balancer's own average")
    func meanResponseTime() {
        // 100 responses took 30,000 ms in the window: 300 ms mean > 200 ms.
        let slow = gate.judge(previous: snapshot(0, responses: 100, fivexx: 0, rtimeTotal: 5_000),
                              current: snapshot(1, responses: 200, fivexx: 0, rtimeTotal: 35_000))
        #expect(slow.verdict == .fail)
        #expect(slow.value == 300)
        let fast = gate.judge(previous: snapshot(0, responses: 100, fivexx: 0),
                              current: snapshot(1, responses: 200, fivexx: 0, rtimeAverage: 150))
        #expect(fast.verdict == .pass)
        let unknown = gate.judge(previous: snapshot(0, responses: 100, fivexx: 0),
                                 current: snapshot(1, responses: 200, fivexx: 0))
        #expect(unknown.verdict == .inconclusive)
    }

    @Test("Prometheus: empty is inconclusive, several samples an error, one sample compared with min/max")
    func prometheus() {
        #expect(PrometheusVerdict.judge(result: [], min: nil, max: 0.25).verdict == .inconclusive)
        let many = PrometheusVerdict.judge(result: [0.1, 0.2], min: nil, max: 0.25)
        #expect(many.verdict == .error)
        #expect(many.detail.contains("expected a single sample"))
        #expect(PrometheusVerdict.judge(result: [0.1], min: nil, max: 0.25).verdict == .pass)
        #expect(PrometheusVerdict.judge(result: [0.3], min: nil, max: 0.25).verdict == .fail)
        #expect(PrometheusVerdict.judge(result: [0.3], min: 0.5, max: nil).verdict == .fail)
        #expect(PrometheusVerdict.judge(result: [0.25], min: 0.25, max: 0.25).verdict == .pass)
        #expect(PrometheusVerdict.judge(result: [.nan], min: nil, max: 1).verdict == .inconclusive)
    }
}
