import Foundation
import SwitchoverAWS
import SwitchoverTestKit
import Testing

/// Route53 through our client against a real moto (authentication off: moto 5.2.5 refuses every
/// Route53 GET once it is on); fixtures made and read back with boto3.
@Suite struct Route53MotoTests {
    /// A hosted zone `example.com.` with two weighted CNAMEs `app.example.com.` (blue 255 →
    /// blue-ingress, green 0 → green-ingress, TTL 60) and external-dns's ownership TXT record.
    static func zone(on moto: MotoServer) async throws -> String {
        let output = try await moto.python("""
            r53 = client("route53")
            zone = r53.create_hosted_zone(Name="example.com.", CallerReference="switchover-test")["HostedZone"]["Id"]
            def weighted(identifier, weight, value):
                return {"Action": "CREATE", "ResourceRecordSet": {"Name": "app.example.com.", "Type": "CNAME",
                        "SetIdentifier": identifier, "Weight": weight, "TTL": 60, "ResourceRecords": [{"Value": value}]}}
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
                weighted("blue", 255, "blue-ingress.example.com"), weighted("green", 0, "green-ingress.example.com"),
                {"Action": "CREATE", "ResourceRecordSet": {"Name": "app.example.com.", "Type": "TXT", "TTL": 300,
                 "ResourceRecords": [{"Value": '"heritage=external-dns,external-dns/owner=default,external-dns/resource=service/default/app"'}]}}]})
            print(zone)
            """)
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The weights of app.example.com.'s CNAMEs as boto3 reads them.
    static func botoWeights(_ moto: MotoServer, zone: String) async throws -> [String: Int] {
        let output = try await moto.python("""
            sets = client("route53").list_resource_record_sets(HostedZoneId=\(BotoPython.literal(zone)))["ResourceRecordSets"]
            print(json.dumps({s["SetIdentifier"]: s["Weight"] for s in sets if s["Type"] == "CNAME"}))
            """)
        return try #require(try json(output) as? [String: Int])
    }

    @Test("an UPSERT of both weights in one change batch is INSYNC, and our listing and boto3's read the new weights")
    func upsertBothWeights() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Self.zone(on: moto)
        let route53 = Route53Client(client: awsClient(), endpoint: moto.endpoint)

        let before = try await route53.recordSets(hostedZoneId: zone, named: "app.example.com", type: "CNAME")
        #expect(Dictionary(uniqueKeysWithValues: before.map { ($0.setIdentifier ?? "", $0.weight ?? -1) }) == ["blue": 255, "green": 0])

        func set(_ identifier: String, _ weight: Int) -> Route53RecordSet {
            Route53RecordSet(name: "app.example.com.", type: "CNAME", setIdentifier: identifier, weight: weight, ttl: 60,
                             values: ["\(identifier)-ingress.example.com"])
        }
        let change = try await route53.changeResourceRecordSets(
            hostedZoneId: zone, changes: [Route53Change(.upsert, set("blue", 191)), Route53Change(.upsert, set("green", 64))],
            comment: "switchover step 2: green 25%")
        #expect(!change.id.isEmpty && !change.id.hasPrefix("/change/"))
        let status = try await route53.getChange(id: change.id)
        #expect(status.status == .insync)
        #expect(status.id == change.id)

        let after = try await route53.recordSets(hostedZoneId: zone, named: "app.example.com.", type: "CNAME")
        #expect(after.count == 2)
        for record in after {
            #expect(record.name == "app.example.com.")
            #expect(record.ttl == 60)
            #expect(record.values == ["\(record.setIdentifier ?? "?")-ingress.example.com"])
        }
        #expect(Dictionary(uniqueKeysWithValues: after.map { ($0.setIdentifier ?? "", $0.weight ?? -1) }) == ["blue": 191, "green": 64])
        #expect(try await Self.botoWeights(moto, zone: zone) == ["blue": 191, "green": 64])
    }

    @Test("the listing shows external-dns's ownership TXT record beside the weighted ones, and pages without looping")
    func listingWithOwnershipAndPages() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Self.zone(on: moto)
        let route53 = Route53Client(client: awsClient(), endpoint: moto.endpoint)

        let all = try await route53.recordSets(hostedZoneId: zone, named: "app.example.com.")
        let txt = try #require(all.first { $0.type == "TXT" })
        #expect(txt.values.count == 1)
        #expect(txt.values[0].contains("heritage=external-dns"))
        #expect(txt.ttl == 300)
        #expect(txt.setIdentifier == nil && txt.weight == nil)

        // Two record sets a page: the weighted pair, then the TXT record on a page of its own,
        // reached through NextRecordName/NextRecordType.
        let paged = try await route53.recordSets(hostedZoneId: zone, named: "app.example.com.", pageSize: 2)
        #expect(paged.map(\.type).sorted() == ["CNAME", "CNAME", "TXT"])

        // One a page splits the weighted pair, and moto 5.2.5 then names the same start again
        // (it ignores `identifier`, and sends no NextRecordIdentifier): refused, never a loop.
        let page = try await route53.listResourceRecordSets(hostedZoneId: zone, startName: "app.example.com.", maxItems: 1)
        #expect(page.recordSets.count == 1 && page.isTruncated)
        let stuck = await #expect(throws: AWSError.self) {
            _ = try await route53.recordSets(hostedZoneId: zone, named: "app.example.com.", pageSize: 1)
        }
        #expect(stuck?.kind == .invalidResponse)
        #expect(stuck?.message.contains("does not advance") == true)
    }

    @Test("GetHostedZone names the zone")
    func hostedZone() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let zone = try await Self.zone(on: moto)
        let route53 = Route53Client(client: awsClient(), endpoint: moto.endpoint)
        let described = try await route53.getHostedZone(id: "/hostedzone/\(zone.replacingOccurrences(of: "/hostedzone/", with: ""))")
        #expect(described.name == "example.com.")
        #expect(!described.privateZone)
        #expect("/hostedzone/\(described.id)" == zone || described.id == zone)
    }
}
