import Foundation
import Logging
import SwitchoverAWS
import SwitchoverCore
import SwitchoverDrivers
import SwitchoverNet
import SwitchoverTestKit

/// One Route53 step as `switchover run` takes it, against a real moto (`--only route53`): the
/// Route53 router's `apply` reads both weighted records (`ListResourceRecordSets`), UPSERTs them
/// in one `ChangeResourceRecordSets` batch, polls `GetChange` until `INSYNC` and reads them back
/// (`ListResourceRecordSets`), every request signed with our SigV4. Beside it, in the same run and
/// against the same moto and zone, botocore (boto3 from scripts/setup's moto venv) makes the same
/// four calls with the same parameters, in one Python process started once that times each trial
/// with `perf_counter` and prints the times: the ratio is ours / botocore's.
///
/// The router reads before it writes (each record is written back as it was read, only its
/// weight changed), so a step is four calls, not three: botocore makes the same read so that the
/// two columns count the same requests. moto answers `INSYNC` at once, so each side polls
/// `GetChange` exactly once; the figure is the client's cost (signing, HTTP, XML) plus moto's.
enum Route53Figure {
    static let record = "app.bench.example."

    static func measure(trials: Int) async throws -> [FigureRow] {
        progress("route53 step (list, change, GetChange until INSYNC, list) against moto: \(trials) trials, ours then botocore's")
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await moto.python("""
            r53 = client("route53")
            zone = r53.create_hosted_zone(Name="bench.example.", CallerReference="switchover-bench")["HostedZone"]["Id"]
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
                {"Action": "CREATE", "ResourceRecordSet": {"Name": \(BotoPython.literal(record)), "Type": "CNAME", "SetIdentifier": c,
                 "Weight": w, "TTL": 60, "ResourceRecords": [{"Value": c + "-ingress.bench.example"}]}}
                for c, w in (("blue", 255), ("green", 0))]})
            print(zone.split("/")[-1])
            """).trimmingCharacters(in: .whitespacesAndNewlines)

        // Ours: the router `switchover run` builds, GetChange polled every 50 ms (moto never makes it wait).
        var logger = Logger(label: "bench.route53")
        logger.logLevel = .warning   // not a line per change on the table's stderr
        let http = HTTPClient(configuration: .init(connectTimeout: .seconds(2), timeout: .seconds(20)), logger: logger)
        let client = AWSClient(credentials: AWSCredentials(accessKeyId: "testing", secretAccessKey: "testing"), http: http,
                               retry: .init(maxRetries: 0), logger: logger)
        let spec = Route53Spec(hostedZoneId: zone, recordName: record, recordType: "CNAME", region: "us-east-1",
                               endpoint: moto.endpoint, insyncTimeout: .seconds(10), ignoreExternalDNSOwnership: false)
        func cluster(_ name: String) -> ClusterServers {
            ClusterServers(cluster: name, servers: [name], section: ClusterSection(
                driver: "route53", spec: Route53ClusterSpec(setIdentifier: name, value: "\(name)-ingress.bench.example")))
        }
        let router = try Route53Router(spec: spec, from: cluster("blue"), to: cluster("green"), client: client,
                                       pollInterval: .milliseconds(50), logger: logger)
        // Alternating 10% and 90% to green: every trial really changes both weights.
        let percents = [10.0, 90.0]
        let planned = percents.map { router.translation.weights(percentToTarget: $0, from: ["blue"], to: ["green"]) }
        let warmup = 3
        var ours: [Double] = []
        for trial in 0..<(warmup + trials) {
            let started = ContinuousClock.now
            let live = try await router.apply(percentToTarget: percents[trial % 2])
            let elapsed = milliseconds(ContinuousClock.now - started)
            // apply has read them back and compared them already; the benchmark checks once more.
            guard live.assignment.fromTotal == planned[trial % 2].fromTotal, live.assignment.toTotal == planned[trial % 2].toTotal else {
                throw TestKitError("route53: trial \(trial) read back \(live.assignment), not \(percents[trial % 2])% to green")
            }
            if trial >= warmup { ours.append(elapsed) }
        }
        let low = (planned[0].fromTotal, planned[0].toTotal)
        let high = planned[1]

        // botocore: the same four calls, the same parameters and weights, in one process.
        let output = try await moto.python("""
            import time
            r53 = client("route53")
            zone, name = \(BotoPython.literal(zone)), \(BotoPython.literal(record))
            weights = [(\(low.0), \(low.1)), (\(high.fromTotal), \(high.toTotal))]
            def records():
                sets = r53.list_resource_record_sets(HostedZoneId=zone, StartRecordName=name, StartRecordType="CNAME")["ResourceRecordSets"]
                return {s["SetIdentifier"]: s for s in sets if s["Name"] == name and s["Type"] == "CNAME"}
            times = []
            for trial in range(\(warmup + trials)):
                blue, green = weights[trial % 2]
                started = time.perf_counter()
                held = records()
                held["blue"]["Weight"], held["green"]["Weight"] = blue, green
                change = r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={
                    "Comment": "botocore: blue %d, green %d" % (blue, green),
                    "Changes": [{"Action": "UPSERT", "ResourceRecordSet": held[c]} for c in ("blue", "green")]})["ChangeInfo"]
                while r53.get_change(Id=change["Id"])["ChangeInfo"]["Status"] != "INSYNC":
                    time.sleep(0.05)
                back = records()
                elapsed = (time.perf_counter() - started) * 1000
                if (back["blue"]["Weight"], back["green"]["Weight"]) != (blue, green):
                    sys.exit("botocore read back %r" % ((back["blue"]["Weight"], back["green"]["Weight"]),))
                if trial >= \(warmup):
                    times.append(elapsed)
            print(json.dumps(times))
            """)
        guard let botocore = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [Double], botocore.count == trials else {
            throw TestKitError("route53: botocore printed \(output.prefix(300))")
        }
        let reference = Stats(botocore)
        return [Stats(ours).row(
            "Route53 step against moto (list, change, GetChange until INSYNC, list)", unit: "ms",
            reference: reference.median,
            referenceLabel: String(format: "botocore, the same 4 calls in one Python process: %.2f ms (%.2f–%.2f)",
                                   reference.median, reference.min, reference.max),
            note: "Route53Router.apply through our SigV4 and libcurl, 10%/90% to green alternating (\(low.0)/\(low.1), "
                + "\(high.fromTotal)/\(high.toTotal)); \(warmup) warm-up trials each, dropped; ours first, then botocore's, same moto and zone")]
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
}
