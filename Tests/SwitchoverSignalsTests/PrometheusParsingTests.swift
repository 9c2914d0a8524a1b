import Foundation
import SwitchoverSignals
import Testing

/// How a Prometheus `/api/v1/query` answer is read: every result type and error shape
/// Prometheus produces, written out as it sends them.
struct PrometheusParsingTests {
    let base = URL(string: "http://127.0.0.1:9090")!

    func parse(_ status: Int, _ body: String) throws(PrometheusError) -> [Double] {
        try PrometheusQuerying.parse(status: status, body: Data(body.utf8), base: base)
    }

    @Test("vector and scalar values are strings, including NaN and ±Inf")
    func values() throws {
        #expect(try parse(200, #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"job":"a"},"value":[1700000000.1,"0.25"]}]}}"#) == [0.25])
        #expect(try parse(200, #"{"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"+Inf"]}}"#) == [.infinity])
        #expect(try parse(200, #"{"status":"success","data":{"resultType":"vector","result":[]}}"#).isEmpty)
        let nan = try parse(200, #"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#)
        #expect(nan.count == 1 && nan[0].isNaN)
        #expect(try parse(200, #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]},{"metric":{},"value":[1,"-Inf"]}]}}"#) == [1, -.infinity])
    }

    @Test("status error, HTTP errors, matrices and garbage are errors naming what went wrong")
    func errors() {
        #expect(throws: PrometheusError.self) { try parse(400, #"{"status":"error","errorType":"bad_data","error":"parse error"}"#) }
        do {
            _ = try parse(422, #"{"status":"error","errorType":"execution","error":"query timed out"}"#)
            Issue.record("no error")
        } catch {
            #expect(error.code == .queryFailed)
            #expect(error.description.contains("query timed out"))
        }
        do { _ = try parse(503, "Service Unavailable"); Issue.record("no error") } catch { #expect(error.code == .httpStatus) }
        do {
            _ = try parse(200, #"{"status":"success","data":{"resultType":"matrix","result":[]}}"#)
            Issue.record("no error")
        } catch { #expect(error.code == .unsupportedResult) }
        do { _ = try parse(200, "<html>"); Issue.record("no error") } catch { #expect(error.code == .badResponse) }
        do {
            _ = try parse(200, #"{"status":"success","data":{"resultType":"scalar","result":[1,"abc"]}}"#)
            Issue.record("no error")
        } catch { #expect(error.code == .badResponse) }
    }
}
